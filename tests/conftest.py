"""Shared fixtures: the shipped sample episodes and the recording packaged as a generation.

Also two safety nets for the Qt tests:
- a fatal crash (SIGABRT, SIGSEGV, ...) writes every thread's Python stack to `FAULT_LOG` (and Qt's
  `qFatal` text, which pytest-qt's log capture would otherwise swallow), so CI can print it last;
- after each Qt test its closed widgets are deleted, and after each module of them the reference
  cycles they left are collected, in the main thread: no Qt object is left for a garbage collection
  in another thread to delete.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Where fatal-crash stacks go; `make test` prints this file's stacks when pytest dies.
FAULT_LOG = Path(os.environ.get("GEO4D_FAULT_LOG") or Path(tempfile.gettempdir()) / "geo4d-pytest-faults.log")
_fault_file: IO[str] | None = None


@pytest.hookimpl(trylast=True)  # after pytest's faulthandler plugin, which points it at stderr
def pytest_configure(config: pytest.Config) -> None:
    """Send faulthandler's all-thread stacks to a fresh FAULT_LOG for the whole run."""
    global _fault_file
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's log would be overwritten
        return
    _fault_file = open(FAULT_LOG, "w", encoding="utf-8")  # noqa: SIM115 (open until the process ends)
    faulthandler.enable(file=_fault_file, all_threads=True)


@pytest.hookimpl(trylast=True)  # after pytest's faulthandler plugin disabled faulthandler
def pytest_unconfigure(config: pytest.Config) -> None:
    """Keep the crash log armed through interpreter exit, where Qt and VTK objects are torn down."""
    if _fault_file is not None and not _fault_file.closed:
        faulthandler.enable(file=_fault_file, all_threads=True)


def pytest_report_header(config: pytest.Config) -> str:
    """Say where a fatal crash's stacks go (they no longer go to stderr)."""
    return f"fatal-crash stacks (faulthandler): {FAULT_LOG}"


def _log_fault(text: str) -> None:
    """Append a line to the crash log now (the process may abort right after)."""
    if _fault_file is not None and not _fault_file.closed:
        _fault_file.write(text + "\n")
        _fault_file.flush()


def _uses_qt(item: pytest.Item) -> bool:
    """Whether a test uses Qt (pytest-qt's qtbot or qapp)."""
    return bool({"qtbot", "qapp"} & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """While a Qt test body runs, write `qFatal` messages to the crash log before Qt aborts.

    Chains to pytest-qt's message capture (started before, stopped after the call phase), which
    keeps every message and would otherwise take a fatal one's text down with the process."""
    if not _uses_qt(item):
        return (yield)
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    previous = None

    def handler(kind: QtMsgType, context: object, message: str) -> None:
        if kind == QtMsgType.QtFatalMsg:
            _log_fault(f"Qt fatal message during {item.nodeid}: {message}")
        if previous is not None:
            previous(kind, context, message)
        elif kind != QtMsgType.QtDebugMsg:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)
    try:
        return (yield)
    finally:
        qInstallMessageHandler(previous)


def _delete_later_now() -> None:
    """Delete the widgets pytest-qt closed and scheduled with deleteLater(), here in the main thread."""
    from PySide6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture(autouse=True)
def _delete_closed_widgets(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a Qt test, delete the widgets it closed now, not in some later test's qWait."""
    yield
    if _uses_qt(request.node):
        _delete_later_now()


@pytest.fixture(scope="module", autouse=True)
def _collect_qt_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a module of Qt tests, collect the Qt wrappers its widgets left in reference cycles, in
    the main thread: left for later, a collection in another thread (e.g. a test's reader threads)
    would delete Qt objects off the GUI thread. Per module, as a full collection takes ~0.4 s."""
    yield
    module = request.module
    if any(_uses_qt(item) for item in request.session.items if getattr(item, "module", None) is module):
        for _ in range(2):  # deleting widgets can free Python objects that free more widgets
            _delete_later_now()
            gc.collect()


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    """The shipped sample episodes (the suite needs them: they are part of the product)."""
    from geo4d_studio.paths import sample_scenes

    paths = sample_scenes()
    assert paths, "sample_data/ has no episodes"
    return paths


@pytest.fixture(scope="session")
def sample_path(sample_paths: list[Path]) -> Path:
    """The episode the Studio opens by default."""
    return sample_paths[0]


@pytest.fixture
def oracle_generation():
    """Factory `oracle_generation(scene, ref, other, start, frames)`: recorded frames as a Generation."""
    from geo4d_studio.reference import recorded_clip

    return recorded_clip

"""While a Studio window lives, Python's cyclic GC runs in the GUI thread only, never in a worker.

A collection in a worker thread deletes the Qt objects that closed windows left in reference
cycles off the GUI thread, which aborts the process at random (see geo4d_studio.qt.gui_gc).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from geo4d_studio.qt.gui_gc import collector  # noqa: E402
from geo4d_studio.qt.main_window import MainWindow  # noqa: E402
from geo4d_studio.qt.workers import Worker  # noqa: E402

pytestmark = pytest.mark.gui

CYCLES = 50_000  # far past every GC threshold


def make_cycles(_cancelled: Callable[[], bool], _report: Callable[[int, int, str], None]) -> int:
    """A worker job that leaves a lot of cyclic garbage, as tracking and generation do."""
    for _ in range(CYCLES):
        a: list = []
        a.append(a)
    return CYCLES


def test_workers_never_run_the_garbage_collector(qtbot, tmp_path: Path) -> None:
    holds_before, enabled_before = collector().holds, gc.isenabled()
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    window = MainWindow(model_dir=tmp_path / "no-model", settings=settings, with_3d=False)
    qtbot.addWidget(window)
    collecting: list[threading.Thread] = []

    def on_gc(phase: str, _info: dict) -> None:
        if phase == "start":
            collecting.append(threading.current_thread())

    gc.callbacks.append(on_gc)
    try:
        worker = Worker(make_cycles)
        window.pool.start(worker)
        qtbot.waitUntil(lambda: worker.done, timeout=30_000)
        workers = {t.name for t in collecting if t is not threading.main_thread()}
        assert not workers, f"the garbage collector ran in worker thread(s) {workers}"
        # the GUI thread's timer collects what the worker left
        qtbot.waitUntil(lambda: threading.main_thread() in collecting, timeout=5_000)
    finally:
        gc.callbacks.remove(on_gc)
    window.close()
    assert collector().holds == holds_before
    assert gc.isenabled() == enabled_before or holds_before > 0

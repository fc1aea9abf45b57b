"""Background work off the GUI thread: a QRunnable with a cancel flag and queued result signals."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from geo4d_studio.errors import Geo4DError

#: Work function: gets `is_cancelled()` and `report(done, total, text)`; returns the result.
Job = Callable[[Callable[[], bool], Callable[[int, int, str], None]], Any]


class Cancelled(Exception):  # noqa: N818 (reads as the outcome it signals)
    """Raised by a job that stopped because cancellation was requested."""


class WorkerSignals(QObject):
    """Signals emitted from the worker thread; Qt queues them to receivers in the GUI thread."""

    progress = Signal(int, int, str)  # done, total, text
    finished = Signal(object)  # the job's result
    failed = Signal(str)  # one-line message for the user
    cancelled = Signal()


class Worker(QRunnable):
    """Runs a job in the thread pool; `cancel()` sets the flag the job polls."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.job = job
        self.signals = WorkerSignals()
        self._cancel = threading.Event()
        self._done = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self._cancel.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job has ended; returns False on timeout."""
        return self._done.wait(timeout_s)

    @property
    def done(self) -> bool:
        """Whether the job has ended (finished, failed or cancelled)."""
        return self._done.is_set()

    def _report(self, done: int, total: int, text: str) -> None:
        self.signals.progress.emit(done, total, text)

    def run(self) -> None:
        """Thread-pool entry point: marks the job done, then emits exactly one outcome signal."""
        outcome: tuple[Signal, tuple] = (self.signals.cancelled, ())
        try:
            result = self.job(self.is_cancelled, self._report)
        except Cancelled:
            pass
        except Geo4DError as err:
            outcome = (self.signals.failed, (str(err),))
        except MemoryError:
            outcome = (self.signals.failed, ("out of memory: try fewer frames, a smaller model or the CPU",))
        except Exception as err:  # any failure must leave the app usable
            name = type(err).__name__
            hint = " (out of memory)" if "OutOfMemory" in name or "out of memory" in str(err) else ""
            outcome = (self.signals.failed, (f"{name}{hint}: {err}",))
        else:
            if not self.is_cancelled():
                outcome = (self.signals.finished, (result,))
        self._done.set()
        signal, args = outcome
        signal.emit(*args)

"""Python's cyclic garbage collector runs in the GUI thread only, while the Studio's workers may run.

Closed windows and docks leave Qt wrappers in reference cycles (pyqtgraph items and menus, the 3D
view's OpenGL widget and timers). Python collects cycles in whichever thread happens to allocate
past the GC threshold, and the Studio's thread-pool workers (tracking, metrics, generation, device
detection) run plenty of Python. A collection there deletes Qt objects off the GUI thread while the
GUI thread is inside Qt: Qt's thread checks (`qFatal`), heap corruption or a deadlock, i.e. a random
SIGABRT ("Fatal Python error: Aborted"), SIGSEGV or hang. (Explicit `gc.collect()` calls in a job
are not covered: the Studio's jobs make none.)

While a window holds a `GcHold`, automatic collection is off and a GUI-thread timer collects with
the interpreter's own thresholds instead (pyqtgraph's `GarbageCollector` pattern), so garbage is
still freed, always in the GUI thread. The last hold is released once its window has joined its
workers; automatic collection is then restored (no worker thread runs Python any more).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

COLLECT_INTERVAL_MS = 500


def _in_gui_thread() -> bool:
    """Whether the caller runs in the QApplication's thread (or no application exists yet)."""
    app = QCoreApplication.instance()
    return app is None or QThread.currentThread() is app.thread()


class GuiThreadCollector(QObject):
    """Counts holds; while any is held, cycles are collected by a timer in the GUI thread only."""

    def __init__(self, interval_ms: int = COLLECT_INTERVAL_MS) -> None:
        super().__init__()
        self.holds = 0
        self._was_enabled = True
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect_due)

    def acquire(self) -> None:
        """Take a hold (GUI thread): from now on only the GUI thread collects."""
        if not _in_gui_thread():
            raise RuntimeError("GuiThreadCollector.acquire() must be called in the GUI thread")
        if self.holds == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self.timer.start()
        self.holds += 1

    def release(self) -> None:
        """Drop a hold (GUI thread, after the holder joined its workers); the last one restores GC."""
        if self.holds == 0:
            return
        self.holds -= 1
        if self.holds == 0:
            self.timer.stop()
            if self._was_enabled:
                gc.enable()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold, as automatic GC would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if 0 < thresholds[generation] < counts[generation]:
                return gc.collect(generation)
        return 0


_collector: GuiThreadCollector | None = None


def collector() -> GuiThreadCollector:
    """The process's collector (created on first use, in the GUI thread)."""
    global _collector
    if _collector is None:
        _collector = GuiThreadCollector()
    return _collector


class GcHold:
    """One owner's hold on GUI-thread-only collection; `release()` may be called any number of times."""

    def __init__(self) -> None:
        self.held = False
        self.acquire()

    def acquire(self) -> None:
        """Take the hold unless this owner already has it."""
        if not self.held:
            collector().acquire()
            self.held = True

    def release(self) -> None:
        """Give the hold back unless it already was."""
        if self.held:
            self.held = False
            collector().release()

"""Status bar: frame, time, compute device and the process's memory."""

from __future__ import annotations

import os
import resource
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from geo4d_studio.qt.readout import fit_readout
from geo4d_studio.session import Session

MEMORY_REFRESH_MS = 1000


def resident_memory_mb() -> float:
    """Resident memory of this process in MiB (peak RSS where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class StatusBar(QStatusBar):
    """Permanent fields for frame, time, device and memory; messages appear on the left."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.frame_label, self.time_label = QLabel(), QLabel()
        self.device_label, self.memory_label = QLabel(), QLabel()
        for label in (self.frame_label, self.time_label, self.device_label, self.memory_label):
            self.addPermanentWidget(label)
        self.timer = QTimer(self)
        self.timer.setInterval(MEMORY_REFRESH_MS)
        self.timer.timeout.connect(self.update_memory)
        self.timer.start()
        session.frame_changed.connect(self.update_frame)
        session.scene_changed.connect(self._fit_frame_fields)
        self._fit_frame_fields()
        self.update_memory()

    def _fit_frame_fields(self, *_: object) -> None:
        """Size the frame and time fields for the open recording, then show the time cursor."""
        last = max(self.session.num_frames - 1, 0)
        fit_readout(self.frame_label, f"frame {last}/{last}")
        fit_readout(self.time_label, "t 9999.999 s")
        self.update_frame()

    def update_frame(self, *_: object) -> None:
        """Show the time cursor."""
        last = max(self.session.num_frames - 1, 0)
        self.frame_label.setText(f"frame {self.session.frame}/{last}")
        self.time_label.setText(f"t {self.session.time_s:.3f} s")

    def set_device(self, device: str) -> None:
        """Show the device generation runs on."""
        self.device_label.setText(f"device {device or '–'}")

    def update_memory(self) -> None:
        """Show resident memory."""
        self.memory_label.setText(f"memory {resident_memory_mb():.0f} MiB")

    def stop(self) -> None:
        """Stop the memory refresh (window closing)."""
        self.timer.stop()

"""Timeline dock: frame slider, playback (play/pause/step/loop/speed), generation coverage and window."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from geo4d_studio.qt.readout import fit_readout
from geo4d_studio.session import Session

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
SP = QStyle.StandardPixmap


class CoverageBar(QWidget):
    """Strip under the slider: frames the selected generation covers, and the next generation's window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(10)
        self.setMaximumHeight(10)
        self.num_frames = 0
        self.covered = np.zeros(0, dtype=np.int64)
        self.start, self.planned = 0, np.zeros(0, dtype=np.int64)
        self.setToolTip(
            "cyan: frames the selected generation covers; white: next generation's start frame; "
            "amber: frames it will predict"
        )

    def set_state(self, num_frames: int, covered: np.ndarray, start: int, planned: np.ndarray) -> None:
        """Frames in the recording, frames the selected generation covers, the next generation's
        start (condition) frame and the frames it will predict."""
        self.num_frames, self.covered = num_frames, np.asarray(covered)
        self.start, self.planned = start, np.asarray(planned)
        self.update()

    def paintEvent(self, event: object) -> None:
        """Draw the covered frames (top half) and the next generation's frames (bottom half)."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#23262b"))
        if self.num_frames > 0:
            step = self.width() / self.num_frames
            half = self.height() / 2
            painter.fillRect(QRectF(self.start * step, half, max(step, 2.0), half), QColor("#ffffff"))
            for frame in self.planned:
                painter.fillRect(QRectF(frame * step, half, max(step, 2.0), half), QColor("#ffb300"))
            for frame in self.covered:
                painter.fillRect(QRectF(frame * step, 0, max(step, 2.0), half), QColor("#00e5ff"))
        painter.end()


class TimelineDock(QDockWidget):
    """One time cursor for every view: slider, playback controls, and the next generation's window."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Timeline", parent)
        self.setObjectName("TimelineDock")
        self.session, self.window = session, session.generation_window
        window = self.window
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("FrameSlider")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows go to the window's shortcuts
        self.coverage = CoverageBar()
        self.position = QLabel()
        self.position.setObjectName("FramePosition")
        self.loop = QCheckBox("loop")
        self.loop.setChecked(True)
        self.speed = QComboBox()
        self.speed.addItems([f"{s:g}×" for s in SPEEDS])
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("Playback speed relative to the recording's frame rate")
        self.start = QSpinBox()
        self.start.setToolTip("First (conditioning) frame of the next generation")
        self.horizon = QSpinBox()
        self.horizon.setRange(1, 64)
        self.horizon.setToolTip("Number of frames the next generation predicts")
        set_start = QPushButton("start = cursor")
        set_start.setToolTip("Use the current frame as the next generation's start frame")

        self.play_action = self._action("Play/pause", "Space", self.toggle_play)
        self.play_action.setCheckable(True)
        self.actions_ = [
            self._action("First frame", "Home", lambda: session.set_frame(0)),
            self._action("Step back", "Left", lambda: self.step(-1)),
            self.play_action,
            self._action("Step forward", "Right", lambda: self.step(1)),
            self._action("Last frame", "End", lambda: session.set_frame(session.num_frames - 1)),
            self._action("Back 10 frames", "Shift+Left", lambda: self.step(-10)),
            self._action("Forward 10 frames", "Shift+Right", lambda: self.step(10)),
        ]
        buttons = QHBoxLayout()
        pixmaps = (SP.SP_MediaSkipBackward, SP.SP_MediaSeekBackward, SP.SP_MediaPlay)
        pixmaps += (SP.SP_MediaSeekForward, SP.SP_MediaSkipForward)
        for action, pixmap in zip(self.actions_[:5], pixmaps, strict=True):
            action.setIcon(self.style().standardIcon(pixmap))
            button = QToolButton()
            button.setDefaultAction(action)
            buttons.addWidget(button)
        buttons.addWidget(self.loop)
        buttons.addWidget(self.speed)
        buttons.addWidget(self.position)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("generate from"))
        buttons.addWidget(self.start)
        buttons.addWidget(QLabel("horizon"))
        buttons.addWidget(self.horizon)
        buttons.addWidget(set_start)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(1)
        layout.addWidget(self.slider)
        layout.addWidget(self.coverage)
        layout.addLayout(buttons)
        body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setWidget(body)

        self.slider.valueChanged.connect(session.set_frame)
        self.speed.currentIndexChanged.connect(self._update_timer)
        self.start.valueChanged.connect(lambda v: window.set(start=v))
        self.horizon.valueChanged.connect(lambda v: window.set(horizon=v))
        set_start.clicked.connect(lambda: window.set(start=session.frame))
        session.scene_changed.connect(self._on_scene)
        session.frame_changed.connect(self._on_frame)
        session.generation_selected.connect(self._update_coverage)
        window.changed.connect(self._on_window)
        self._on_scene()

    def _action(self, text: str, shortcut: str, slot: object) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{text} ({shortcut})")
        action.triggered.connect(slot)
        return action

    def step(self, frames: int) -> None:
        """Move the time cursor by `frames`, wrapping around when looping is on."""
        n = self.session.num_frames
        if n:
            target = self.session.frame + frames
            self.session.set_frame(target % n if self.loop.isChecked() else target)

    def toggle_play(self) -> None:
        """Start or stop playback at the recording's frame rate times the chosen speed."""
        playing = not self.timer.isActive() and self.session.num_frames > 1
        if playing:
            self._update_timer()
            self.timer.start()
        else:
            self.timer.stop()
        self._show_playing(playing)

    def stop(self) -> None:
        """Stop playback."""
        self.timer.stop()
        self._show_playing(False)

    def _show_playing(self, playing: bool) -> None:
        self.play_action.setChecked(playing)
        pixmap = SP.SP_MediaPause if playing else SP.SP_MediaPlay
        self.play_action.setIcon(self.style().standardIcon(pixmap))

    def _update_timer(self) -> None:
        fps = self.session.scene.fps if self.session.scene is not None else 10.0
        self.timer.setInterval(max(int(1000 / (fps * SPEEDS[self.speed.currentIndex()])), 1))

    def _tick(self) -> None:
        last = self.session.num_frames - 1
        if self.session.frame >= last and not self.loop.isChecked():
            self.stop()
        else:
            self.session.set_frame(0 if self.session.frame >= last else self.session.frame + 1)

    def _on_scene(self, *_: object) -> None:
        self.stop()
        last = max(self.session.num_frames - 1, 0)
        for widget, maximum in ((self.slider, last), (self.start, last)):
            widget.blockSignals(True)
            widget.setRange(0, maximum)
            widget.blockSignals(False)
        self._on_window(self.window.start, self.window.horizon)
        fit_readout(self.position, self._position_text(last, last, 9999.999))
        self._on_frame(self.session.frame)

    @staticmethod
    def _position_text(frame: int, last: int, time_s: float) -> str:
        return f"frame {frame} / {last}   t = {time_s:.3f} s"

    def _on_frame(self, frame: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(frame)
        self.slider.blockSignals(False)
        last = max(self.session.num_frames - 1, 0)
        self.position.setText(self._position_text(frame, last, self.session.time_s))

    def _on_window(self, start: int, horizon: int) -> None:
        for spin, value in ((self.start, start), (self.horizon, horizon)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._update_coverage()

    def _update_coverage(self, *_: object) -> None:
        gen = self.session.generation
        covered = gen.frame_indices if gen is not None else np.zeros(0, dtype=np.int64)
        n = self.session.num_frames
        self.coverage.set_state(n, covered, self.window.start, self.window.frames(n))

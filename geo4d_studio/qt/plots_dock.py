"""Plots dock: gripper position, roll/pitch/yaw and width against time, ground truth and tracks.

The time cursor is a draggable line in every plot, linked to the session's frame.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QGraphicsItem, QWidget
from scipy.spatial.transform import Rotation

from geo4d_studio.session import Session

AXIS_COLORS = ("#ef5350", "#66bb6a", "#42a5f5")
TRACK_STYLES = (Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)


def roll_pitch_yaw_deg(poses: np.ndarray) -> np.ndarray:
    """(N, 3) unwrapped extrinsic x-y-z Euler angles in degrees of (N, 4, 4) poses; NaN rows stay NaN."""
    out = np.full((len(poses), 3), np.nan)
    valid = np.isfinite(poses[:, :3, :3]).all(axis=(1, 2))
    if valid.any():
        angles = Rotation.from_matrix(poses[valid, :3, :3]).as_euler("xyz")
        out[valid] = np.degrees(np.unwrap(angles, axis=0))
    return out


class PlotsDock(QDockWidget):
    """x/y/z, roll/pitch/yaw and gripper width of the ground truth and every tracked trajectory."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Plots", parent)
        self.setObjectName("PlotsDock")
        self.session = session
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("#16181c")
        self.plots: list[pg.PlotItem] = []
        self.cursors: list[pg.InfiniteLine] = []
        for col, (title, unit) in enumerate(
            (("position", "m"), ("roll / pitch / yaw", "°"), ("gripper width", "m"))
        ):
            plot = self.canvas.addPlot(row=0, col=col)
            plot.setTitle(f"{title} ({unit})", size="9pt")
            plot.setLabel("bottom", "time", units="s")
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("left", "bottom"):  # axes are redrawn only when their range changes
                plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.addLegend(offset=(-10, 5), labelTextSize="8pt")
            if self.plots:
                plot.setXLink(self.plots[0])
            cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffb300", width=2))
            cursor.setZValue(10)
            cursor.sigDragged.connect(self._on_cursor_dragged)
            plot.addItem(cursor, ignoreBounds=True)
            self.plots.append(plot)
            self.cursors.append(cursor)
        self.setWidget(self.canvas)
        session.scene_changed.connect(self.replot)
        session.trajectories_changed.connect(self.replot)
        session.frame_changed.connect(self._move_cursor)
        self.replot()

    def replot(self, *_: object) -> None:
        """Redraw every curve (on a new scene or trajectory; not on frame changes)."""
        for plot, cursor in zip(self.plots, self.cursors, strict=True):
            plot.clear()
            plot.legend.clear()
            plot.addItem(cursor, ignoreBounds=True)
        scene = self.session.scene
        if scene is not None and scene.ee_pose is not None:
            width = (
                scene.gripper_width if scene.gripper_width is not None else np.full(scene.num_frames, np.nan)
            )
            self._add_series("ground truth", scene.timestamps, scene.ee_pose, width, Qt.PenStyle.SolidLine)
        for index, (name, traj) in enumerate(self.session.trajectories.items()):
            style = TRACK_STYLES[index % len(TRACK_STYLES)]
            self._add_series(name, traj.timestamps, traj.poses, traj.gripper_width, style)
        for plot in self.plots:  # fit once: auto-ranging would re-measure every curve per frame
            plot.enableAutoRange()
            plot.getViewBox().updateAutoRange()
            plot.disableAutoRange()
        self._move_cursor(self.session.frame)

    def _add_series(
        self, name: str, t: np.ndarray, poses: np.ndarray, width: np.ndarray, style: Qt.PenStyle
    ) -> None:
        position, rpy = poses[:, :3, 3], roll_pitch_yaw_deg(poses)
        for plot, values, labels in (
            (self.plots[0], position, "xyz"),
            (self.plots[1], rpy, ("roll", "pitch", "yaw")),
        ):
            for axis, color in enumerate(AXIS_COLORS):
                pen = pg.mkPen(color, width=1.5, style=style)
                plot.plot(t, values[:, axis], pen=pen, name=f"{name} {labels[axis]}", connect="finite")
        self.plots[2].plot(
            t, width, pen=pg.mkPen("#e0e0e0", width=1.5, style=style), name=name, connect="finite"
        )

    def _move_cursor(self, frame: int) -> None:
        t = self.session.time_s
        for cursor in self.cursors:
            cursor.blockSignals(True)
            cursor.setValue(t)
            cursor.blockSignals(False)

    def _on_cursor_dragged(self, cursor: pg.InfiniteLine) -> None:
        scene = self.session.scene
        if scene is None:
            return
        frame = int(np.argmin(np.abs(scene.timestamps - cursor.value())))
        self.session.set_frame(frame)
        self._move_cursor(self.session.frame)  # snap every cursor to the chosen frame

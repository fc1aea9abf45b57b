"""The 3D view dock: fused cloud, generated pointmaps, frustums, trajectories and camera-pose scrubbing.

It observes the `Session` (time cursor, visible cameras, generation, trajectories, hover point, active
camera) and updates only what changed: every layer keeps its VTK actor and has its data replaced in
place. Level of detail: while the user orbits, scrubs or plays, the cloud keeps every `lod_every`-th
point, at most `lod_max_points`; after `idle_ms` without interaction the full cloud comes back.

Manual check: `xvfb-run -a -s "-screen 0 1600x1000x24" python -m geo4d_studio.qt.view3d FILE [OUT.png]`.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import vtk
from PySide6.QtCore import QElapsedTimer, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QImage, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from pyvistaqt import QtInteractor

from geo4d_studio.geometry.camera_path import CameraPath
from geo4d_studio.geometry.fusion import fuse_frame
from geo4d_studio.geometry.se3 import interpolate, transform_points
from geo4d_studio.qt.view3d_camera import (
    nearest_segment,
    project_to_display,
    set_vtk_intrinsics,
    set_vtk_pose,
    vtk_pose,
)
from geo4d_studio.qt.view3d_layers import (
    AXIS_COLORS,
    FRUSTUM_SEGMENTS,
    LabelLayer,
    LineSetLayer,
    MarkerLayer,
    PointCloudLayer,
    axes_segments,
    frustum_segments,
    polyline_segments,
)

if TYPE_CHECKING:
    from geo4d_studio.generation import Generation
    from geo4d_studio.scene import Scene
    from geo4d_studio.session import Session

BACKGROUND_RGB = (30, 31, 36)
LAYERS = {
    "recorded": "Recorded cloud (fused)",
    "generated_ref": "Generated view n",
    "generated_other": "Generated view m (in world via n)",
    "frustums": "Camera frustums",
    "gt_trajectory": "Ground-truth trajectory",
    "tracks": "Tracked trajectories",
    "hover": "Hover marker",
}
GENERATED_REF_TINT = np.array([255, 150, 40], dtype=np.float32)
GENERATED_OTHER_TINT = np.array([60, 200, 255], dtype=np.float32)
FRUSTUM_RGB = (150, 165, 190)
VIRTUAL_FRUSTUM_RGB = (235, 80, 210)
GT_TRAJECTORY_RGB = (240, 240, 240)
TRACK_PALETTE = np.array(
    [[255, 110, 110], [110, 240, 150], [190, 140, 255], [255, 220, 90], [90, 220, 230]], dtype=np.uint8
)
PATH_STEPS = 1000
PYVISTA_KEYS = ("q", "b", "v", "C", "Up", "Down", "plus", "minus")
CLOUD_CACHE_FRAMES = 8
LOD_MAX_POINTS = 200_000  # the decimated cloud's size limit while interacting
LOD_EVERY = 4  # ... and its stride: on software OpenGL the cost of a frame grows with its points
ANIMATION_MS = 300
PICK_RADIUS_PX = 10.0
PRESS_EVENTS = ("LeftButtonPressEvent", "MiddleButtonPressEvent", "RightButtonPressEvent")
WHEEL_EVENTS = ("MouseWheelForwardEvent", "MouseWheelBackwardEvent")
OVERVIEW_ANGLE_DEG = 40.0


def _tinted(rgb: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """Colour a layer with its own tint, shaded by the image luminance so texture stays visible."""
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return np.clip(tint * (0.35 + 0.65 * luma[:, None]), 0, 255).astype(np.uint8)


def _ordered_around(positions: np.ndarray) -> np.ndarray:
    """Indices that order camera positions (N, 3) by azimuth around their centroid (z up)."""
    offset = positions[:, :2] - positions[:, :2].mean(axis=0)
    return np.argsort(np.arctan2(offset[:, 1], offset[:, 0]), kind="stable")


class View3DDock(QDockWidget):
    """Dock with a pyvistaqt QtInteractor showing the session's scene in 3D, and its controls."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("3D view", parent)
        self.setObjectName("View3DDock")
        self.session = session
        self.idle_ms = 200
        self.interacting = False
        self.camera_path: CameraPath | None = None
        self.camera_path_names: list[str] = []
        self._cloud_cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._frustum_owners = np.zeros(0, dtype=np.int64)
        self._frustum_lines = np.zeros((0, 2, 3))
        self._frustum_names: list[str] = []
        self._intrinsics: tuple[np.ndarray, tuple[int, int]] | None = None
        self._scale_m = 1.0
        self._radius_m = 1.0
        self._centre = np.zeros(3)
        self._stale = False
        self._drawn: dict[str, object] = {}  # what each layer last drew, to skip unchanged updates
        self._animation: tuple[np.ndarray, np.ndarray] | None = None
        self._animation_clock = QElapsedTimer()

        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addLayout(self._build_toolbar())
        self.plotter = QtInteractor(body, auto_update=False, multi_samples=0)
        # Its own native window: a frame change then composites only the 3D view through (software)
        # GL, not the whole main window. Siblings stay alien widgets (the attribute is process-wide).
        QApplication.setAttribute(Qt.ApplicationAttribute.AA_DontCreateNativeWidgetSiblings)
        self.plotter.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)
        self.plotter.disable_anti_aliasing()  # MSAA costs more than the points on software GL
        for key in PYVISTA_KEYS:  # q closes the plotter, Up/Down zoom: the app's shortcuts rule
            self.plotter.clear_events_for_key(key, raise_on_missing=False)
        self.plotter.setMinimumSize(320, 240)
        layout.addWidget(self.plotter, 1)
        layout.addLayout(self._build_path_row())
        self.setWidget(body)
        self._build_scene_graph()

        self._idle_timer = QTimer(self, singleShot=True, interval=self.idle_ms)
        self._idle_timer.timeout.connect(self._end_interaction)
        self._render_timer = QTimer(self, singleShot=True, interval=0)
        self._render_timer.timeout.connect(self.render_now)
        self._animation_timer = QTimer(self, interval=16)
        self._animation_timer.timeout.connect(self._animation_step)
        self.plotter.installEventFilter(self)
        self._observe_mouse()
        self._connect_session()
        if session.scene is not None:
            self._on_scene_changed(session.scene)

    # -- construction ------------------------------------------------------------------------
    def _build_toolbar(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.layers_button = QToolButton(text="Layers")
        self.layers_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.layers_button)
        self.layer_actions = {}
        for key, label in LAYERS.items():
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(lambda on, key=key: self.set_layer_visible(key, on))
            self.layer_actions[key] = action
        self.layers_button.setMenu(menu)
        row.addWidget(self.layers_button)
        self.look_combo = QComboBox(minimumContentsLength=6, placeholderText="Look through…")
        self.look_combo.setToolTip("Look through a recorded camera (or double-click its frustum)")
        self.look_combo.activated.connect(lambda i: self.look_through(self.look_combo.itemText(i)))
        row.addWidget(self.look_combo)
        self.viewpoint_combo = QComboBox(minimumContentsLength=6, placeholderText="Viewpoints")
        self.viewpoint_combo.setToolTip("Return to a saved viewpoint")
        self.viewpoint_combo.activated.connect(
            lambda i: self.go_to_viewpoint(self.viewpoint_combo.itemText(i))
        )
        row.addWidget(self.viewpoint_combo)
        save = QPushButton("Save…")
        save.setToolTip("Save the current 3D camera as a named viewpoint")
        save.clicked.connect(self._ask_viewpoint_name)
        row.addWidget(save)
        reset = QPushButton("Overview")
        reset.setToolTip("Free orbit from an overview of the scene (drag: orbit, wheel: zoom)")
        reset.clicked.connect(self.reset_view)
        row.addWidget(reset)
        row.addStretch(1)
        return row

    def _build_path_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Camera path"))
        self.path_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=PATH_STEPS)
        self.path_slider.valueChanged.connect(self._on_path_slider)
        self.path_slider.sliderReleased.connect(self._restart_idle_timer)
        row.addWidget(self.path_slider, 1)
        row.addWidget(QLabel("Point size"))
        self.point_size = QDoubleSpinBox(minimum=1.0, maximum=12.0, singleStep=0.5, value=3.0, decimals=1)
        self.point_size.valueChanged.connect(self.set_point_size)
        row.addWidget(self.point_size)
        return row

    def _build_scene_graph(self) -> None:
        plotter = self.plotter
        plotter.set_background([c / 255 for c in BACKGROUND_RGB])
        plotter.add_axes(color="white")
        renderer = plotter.renderer
        self.cloud, self.generated_ref, self.generated_other = (
            PointCloudLayer(renderer, point_size=3.0, max_decimated=LOD_MAX_POINTS, decimate_every=LOD_EVERY)
            for _ in range(3)
        )
        self.frustums = LineSetLayer(renderer, line_width=1.5)
        self.virtual_frustum = LineSetLayer(renderer, line_width=2.0)
        self.labels = LabelLayer(renderer, color=tuple(c / 255 for c in FRUSTUM_RGB))
        self.gt_trajectory = LineSetLayer(renderer, line_width=2.5)
        self.gt_axes = LineSetLayer(renderer, line_width=3.0)
        self.tracks = LineSetLayer(renderer, line_width=2.5)
        self.track_axes = LineSetLayer(renderer, line_width=3.0)
        self.hover = MarkerLayer(renderer, color=(1.0, 0.25, 0.85))
        self._layer_parts = {
            "recorded": [self.cloud],
            "generated_ref": [self.generated_ref],
            "generated_other": [self.generated_other],
            "frustums": [self.frustums, self.virtual_frustum, self.labels],
            "gt_trajectory": [self.gt_trajectory, self.gt_axes],
            "tracks": [self.tracks, self.track_axes],
            "hover": [self.hover],
        }

    def _observe_mouse(self) -> None:
        interactor = self.plotter.iren.interactor
        observers = [(event, self._on_button_press) for event in PRESS_EVENTS]
        # Button releases do not reach interactor observers past the style; the end of the style's
        # interaction (rotate, pan, dolly) does.
        observers.append(("EndInteractionEvent", lambda *_: self._restart_idle_timer()))
        observers += [(event, lambda *_: self.begin_interaction()) for event in WHEEL_EVENTS]
        # VTK holds these callbacks (and through them this dock) from C++, out of Python's GC's
        # sight: `shutdown` removes them so nothing pins the dock after it is closed.
        self._vtk_observers = [(interactor, interactor.AddObserver(e, cb, 1.0)) for e, cb in observers]

    def _connect_session(self) -> None:
        s = self.session
        self._connections = [
            (s.scene_changed, self._on_scene_changed),
            (s.frame_changed, self._on_frame_changed),
            (s.visible_cameras_changed, self._on_visible_cameras_changed),
            (s.views_changed, self._on_views_changed),
            (s.generation_selected, self._on_generation_selected),
            (s.trajectories_changed, self._on_trajectories_changed),
            (s.hover_point_changed, self._on_hover_point_changed),
            (s.active_camera_changed, self._on_active_camera_changed),
            (s.viewpoints_changed, self._on_viewpoints_changed),
        ]
        for signal, slot in self._connections:
            signal.connect(slot)

    def shutdown(self) -> None:
        """Stop observing the session and the mouse, release the render window (call before deleting).

        Safe to call more than once."""
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections = []
        for timer in (self._idle_timer, self._render_timer, self._animation_timer):
            timer.stop()
        self._animation = None
        self.plotter.removeEventFilter(self)
        for subject, tag in self._vtk_observers:
            subject.RemoveObserver(tag)
        self._vtk_observers = []
        self.plotter.close()

    # -- public API --------------------------------------------------------------------------
    @property
    def lod_max_points(self) -> int:
        """Most points the decimated cloud shows while interacting."""
        return self.cloud.max_decimated

    @lod_max_points.setter
    def lod_max_points(self, value: int) -> None:
        self._set_decimation(int(value), self.lod_every)

    @property
    def lod_every(self) -> int:
        """Stride of the decimated cloud: it keeps every `lod_every`-th point (1: no decimation)."""
        return self.cloud.decimate_every

    @lod_every.setter
    def lod_every(self, value: int) -> None:
        self._set_decimation(self.lod_max_points, int(value))

    def _set_decimation(self, max_points: int, every: int) -> None:
        for layer in (self.cloud, self.generated_ref, self.generated_other):
            layer.set_decimation(max_points, every)

    def render_now(self) -> None:
        """Render synchronously (after any pending data updates)."""
        self._apply_pending()
        if self.plotter.isVisible():
            self.plotter.repaint()  # paintGL renders VTK once and blits; render() would render twice
        else:
            self.plotter.render()

    def grab_image(self) -> QImage:
        """The 3D view with every pending update rendered (RGB888)."""
        self._apply_pending()
        return self.plotter.grabFramebuffer().convertToFormat(QImage.Format.Format_RGB888)

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        """Show or hide one of `LAYERS`."""
        for part in self._layer_parts[layer]:
            part.set_visible(visible)
        action = self.layer_actions[layer]
        if action.isChecked() != visible:
            action.setChecked(visible)
        self._schedule_render()

    def set_point_size(self, size: float) -> None:
        """Point size in pixels of all clouds."""
        for layer in (self.cloud, self.generated_ref, self.generated_other):
            layer.actor.GetProperty().SetPointSize(size)
        if self.point_size.value() != size:
            self.point_size.setValue(size)
        self._schedule_render()

    def begin_interaction(self) -> None:
        """Show decimated clouds until `idle_ms` pass without further interaction."""
        if not self.interacting:
            self.interacting = True
            for layer in (self.cloud, self.generated_ref, self.generated_other):
                layer.set_decimated(True)
        self._restart_idle_timer()

    def look_through(self, name: str, animate: bool = True) -> None:
        """Make the 3D view see what camera `name` sees at the current frame (pose and intrinsics)."""
        scene = self.session.scene
        if scene is None or name not in scene.cameras:
            return
        camera = scene.cameras[name]
        self._intrinsics = (camera.K, (camera.width, camera.height))
        target = camera.pose(self.session.frame)
        if animate and self.isVisible():
            self._animation = (vtk_pose(self.plotter.camera), target)
            self._apply_intrinsics()
            self._animation_clock.start()
            self.begin_interaction()
            self._animation_timer.start()
        else:
            self._animation_timer.stop()
            self._animation = None
            self.session.set_active_camera(target)

    def go_to_viewpoint(self, name: str) -> None:
        """Move the 3D camera to a saved viewpoint."""
        if name in self.session.viewpoints:
            self.session.set_active_camera(self.session.viewpoints[name])

    def save_viewpoint(self, name: str) -> None:
        """Save the 3D view's current camera pose as a named viewpoint in the session."""
        self.session.save_viewpoint(name, vtk_pose(self.plotter.camera))

    def set_path_position(self, s: float) -> None:
        """Move the camera-path slider to fraction `s` in [0, 1] (moves the 3D camera)."""
        self.path_slider.setValue(round(float(np.clip(s, 0.0, 1.0)) * PATH_STEPS))

    def camera_pose(self) -> np.ndarray:
        """The 3D view's current camera as an OpenCV `T_world_cam` (4, 4)."""
        return vtk_pose(self.plotter.camera)

    def frustum_at(self, display_xy: tuple[float, float]) -> str | None:
        """Name of the camera whose frustum passes nearest a VTK display position, if any is close."""
        if not self._frustum_names or not self.layer_actions["frustums"].isChecked():
            return None
        size = tuple(self.plotter.renderer.GetSize())
        ends, in_front = project_to_display(self.plotter.camera, self._frustum_lines.reshape(-1, 3), size)
        valid = in_front.reshape(-1, 2).all(axis=1)
        radius = PICK_RADIUS_PX * self.plotter.devicePixelRatioF()
        hit = nearest_segment(display_xy, ends.reshape(-1, 2, 2), valid, self._frustum_owners, radius)
        return None if hit is None else self._frustum_names[hit]

    def reset_view(self) -> None:
        """An overview from behind and above the recorded cameras, looking at the scene centre."""
        scene = self.session.scene
        camera = self.plotter.camera
        if scene is not None and scene.cameras:
            positions = np.array([c.pose(self.session.frame)[:3, 3] for c in scene.cameras.values()])
            offsets = positions[:, :2] - self._centre[:2]
            side = offsets.mean(axis=0)
            if np.linalg.norm(side) < 0.2 * self._scale_m:  # cameras all around: start behind the first
                side = offsets[0]
            side = side / max(np.linalg.norm(side), 1e-9)
            direction = np.array([1.5 * side[0], 1.5 * side[1], 1.1])
            distance = self._radius_m / np.sin(np.radians(OVERVIEW_ANGLE_DEG / 2))
            camera.SetPosition(*(self._centre + distance * direction / np.linalg.norm(direction)))
            camera.SetFocalPoint(*self._centre)
            camera.SetViewUp(0.0, 0.0, 1.0)
            camera.SetViewAngle(OVERVIEW_ANGLE_DEG)
            camera.SetWindowCenter(0.0, 0.0)
            camera.SetUseHorizontalViewAngle(False)
            self._intrinsics = None
        self.plotter.renderer.ResetCameraClippingRange()
        self._schedule_render()

    # -- Qt events ---------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keep the look-through intrinsics right when the viewport is resized."""
        if watched is self.plotter and event.type() == QEvent.Type.Resize and self._intrinsics is not None:
            QTimer.singleShot(0, self._apply_intrinsics)
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:
        """Catch up with session changes that arrived while hidden."""
        super().showEvent(event)
        if self._stale:
            self._schedule_render()

    # -- session observers -------------------------------------------------------------------
    def _on_scene_changed(self, scene: Scene | None) -> None:
        self._cloud_cache.clear()
        self._drawn.clear()
        self._intrinsics = None
        self.hover.set_point(None)
        names = [] if scene is None else scene.camera_names
        self.look_combo.clear()
        self.look_combo.addItems(names)
        self._on_viewpoints_changed()
        self._stale = True
        if scene is None:
            self._update_camera_path(np.zeros((0, 4, 4)), [])
            self._refresh_all()
            return
        self._measure_scene(scene)
        self._refresh_all()
        self._set_gt_trajectory(scene)
        self._on_trajectories_changed()
        self.reset_view()

    def _on_frame_changed(self, _frame: int) -> None:
        self.begin_interaction()
        self._mark_stale()

    def _on_visible_cameras_changed(self, _names: list[str]) -> None:
        self._mark_stale()

    def _on_views_changed(self, _ref: str, _other: str) -> None:
        self._mark_stale()

    def _on_generation_selected(self, _generation: Generation | None) -> None:
        self._mark_stale()

    def _on_trajectories_changed(self) -> None:
        segments, colors = [], []
        for i, trajectory in enumerate(self.session.trajectories.values()):
            part = polyline_segments(trajectory.positions)
            segments.append(part)
            colors.append(np.broadcast_to(TRACK_PALETTE[i % len(TRACK_PALETTE)], (len(part), 3)))
        self.tracks.set_segments(
            np.concatenate(segments) if segments else np.zeros((0, 2, 3)),
            np.concatenate(colors) if colors else np.zeros((0, 3), np.uint8),
        )
        self._mark_stale()

    def _on_hover_point_changed(self, point: np.ndarray | None) -> None:
        self.hover.set_point(point)
        self._schedule_render()

    def _on_active_camera_changed(self, T_world_cam: np.ndarray | None) -> None:
        if T_world_cam is None:
            return
        T = np.asarray(T_world_cam, dtype=np.float64)
        focal = max(float((self._centre - T[:3, 3]) @ T[:3, 2]), 0.1 * self._scale_m)
        set_vtk_pose(self.plotter.camera, T, focal_distance=focal)
        self._apply_intrinsics()
        self._update_virtual_frustum()
        self._schedule_render()

    def _on_viewpoints_changed(self) -> None:
        current = self.viewpoint_combo.currentText()
        self.viewpoint_combo.clear()
        self.viewpoint_combo.addItems(list(self.session.viewpoints))
        self.viewpoint_combo.setCurrentText(current)

    # -- updates -----------------------------------------------------------------------------
    def _mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self._schedule_render()

    def _apply_pending(self) -> None:
        self._render_timer.stop()
        if self._stale:
            self._refresh_all()

    def _schedule_render(self) -> None:
        if self.isVisible() and not self._render_timer.isActive():
            self._render_timer.start()

    def _refresh_all(self) -> None:
        """Redraw everything that depends on the frame, visible cameras, views and generation."""
        self._stale = False
        scene = self.session.scene
        if scene is None:
            self._drawn.clear()
            self.labels.set_names([])
            empty_points, empty_colors = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
            for layer in (self.cloud, self.generated_ref, self.generated_other):
                layer.set_data(empty_points, empty_colors)
            for lines in (self.frustums, self.virtual_frustum, self.gt_trajectory, self.gt_axes, self.tracks):
                lines.set_segments(np.zeros((0, 2, 3)), np.zeros((0, 3), np.uint8))
            self.track_axes.set_segments(np.zeros((0, 2, 3)), np.zeros((0, 3), np.uint8))
            return
        self.cloud.set_data(*self._fused_cloud(scene, self.session.frame))
        self._update_generated()
        self._update_frustums(scene)
        self._update_pose_axes(scene)
        self._update_virtual_frustum()

    def _fused_cloud(self, scene: Scene, frame: int) -> tuple[np.ndarray, np.ndarray]:
        key = (frame, tuple(self.session.visible_cameras))
        if key in self._cloud_cache:
            self._cloud_cache.move_to_end(key)
        else:
            self._cloud_cache[key] = fuse_frame(scene, frame, cameras=self.session.visible_cameras)
            while len(self._cloud_cache) > CLOUD_CACHE_FRAMES:
                self._cloud_cache.popitem(last=False)
        return self._cloud_cache[key]

    def _unchanged(self, layer: str, key: object) -> bool:
        """True when `layer` already shows the data identified by `key` (else remember `key`)."""
        if layer in self._drawn and self._drawn[layer] == key:
            return True
        self._drawn[layer] = key
        return False

    def _update_generated(self) -> None:
        generation = self.session.generation
        slot = None if generation is None else generation.frame_slot(self.session.frame)
        if self._unchanged("generated", (id(generation), slot)):
            return
        empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
        if slot is None:
            self.generated_ref.set_data(*empty)
            self.generated_other.set_data(*empty)
            return
        layers = (
            (self.generated_ref, generation.pointmap_ref[slot], generation.rgb_ref[slot], GENERATED_REF_TINT),
            (
                self.generated_other,
                generation.pointmap_other_in_ref[slot],
                generation.rgb_other[slot],
                GENERATED_OTHER_TINT,
            ),
        )
        for layer, pointmap, rgb, tint in layers:
            valid = np.any(pointmap != 0, axis=-1)
            points = transform_points(generation.T_world_ref, pointmap[valid]).astype(np.float32)
            layer.set_data(points, _tinted(rgb[valid], tint))

    def _update_frustums(self, scene: Scene) -> None:
        frame = self.session.frame
        names = self.session.visible_cameras
        depth = 0.12 * self._scale_m
        poses = {name: scene.cameras[name].pose(frame) for name in scene.camera_names}
        views = (self.session.ref_camera, self.session.other_camera)
        key = (tuple(names), np.array(list(poses.values())).tobytes(), views)
        if self._unchanged("frustums", key):  # static cameras: nothing to redo on a frame change
            return
        lines = [
            frustum_segments(c.K, poses[name], c.width, c.height, depth)
            for name, c in ((n, scene.cameras[n]) for n in names)
        ]
        self._frustum_names = list(names)
        self._frustum_lines = np.concatenate(lines) if lines else np.zeros((0, 2, 3))
        self._frustum_owners = np.repeat(np.arange(len(lines)), FRUSTUM_SEGMENTS)
        # Reference view n and second view m wear the colours of their generated layers.
        tints = {views[1]: GENERATED_OTHER_TINT, views[0]: GENERATED_REF_TINT}
        per_camera = np.array([tints.get(name, FRUSTUM_RGB) for name in names], dtype=np.uint8).reshape(-1, 3)
        colors = np.repeat(per_camera, FRUSTUM_SEGMENTS, axis=0)
        self.frustums.set_segments(self._frustum_lines, colors)
        self.labels.set_names(names)
        above = {name: poses[name][:3, 3] - 0.04 * self._scale_m * poses[name][:3, 1] for name in names}
        self.labels.set_positions(above)
        self._update_camera_path(np.array([poses[n] for n in names]), names)

    def _update_camera_path(self, poses: np.ndarray, names: list[str]) -> None:
        if len(names) == 0:
            self.camera_path, self.camera_path_names = None, []
            self.path_slider.setEnabled(False)
            return
        order = _ordered_around(poses[:, :3, 3])
        self.camera_path = CameraPath(poses[order])
        self.camera_path_names = [names[i] for i in order]
        self.path_slider.setEnabled(True)
        self.path_slider.setToolTip(
            "Move the 3D camera smoothly through the recorded cameras: " + " → ".join(self.camera_path_names)
        )

    def _update_pose_axes(self, scene: Scene) -> None:
        frame = self.session.frame
        length = 0.08 * self._scale_m
        gt = axes_segments(scene.ee_pose[frame], length) if scene.ee_pose is not None else np.zeros((0, 2, 3))
        self.gt_axes.set_segments(gt, AXIS_COLORS[: len(gt)])
        tracked = []
        for trajectory in self.session.trajectories.values():
            hits = np.flatnonzero(trajectory.frames == frame)
            if hits.size and not trajectory.lost[hits[0]]:
                tracked.append(axes_segments(trajectory.poses[hits[0]], length))
        segments = np.concatenate(tracked) if tracked else np.zeros((0, 2, 3))
        self.track_axes.set_segments(segments, np.tile(AXIS_COLORS, (len(tracked), 1)))

    def _update_virtual_frustum(self) -> None:
        T = self.session.active_camera
        scene = self.session.scene
        key = (
            None if T is None else T.tobytes(),
            None if self._intrinsics is None else (self._intrinsics[0].tobytes(), self._intrinsics[1]),
        )
        if self._unchanged("virtual_frustum", key):
            return
        if T is None or scene is None:
            self.virtual_frustum.set_segments(np.zeros((0, 2, 3)), np.zeros((0, 3), np.uint8))
            return
        K, (width, height) = self._intrinsics or self._first_camera_intrinsics(scene)
        segments = frustum_segments(K, T, width, height, 0.15 * self._scale_m)
        self.virtual_frustum.set_segments(segments, np.broadcast_to(VIRTUAL_FRUSTUM_RGB, (len(segments), 3)))

    def _set_gt_trajectory(self, scene: Scene) -> None:
        segments = (
            polyline_segments(scene.ee_pose[:, :3, 3]) if scene.ee_pose is not None else np.zeros((0, 2, 3))
        )
        self.gt_trajectory.set_segments(segments, np.broadcast_to(GT_TRAJECTORY_RGB, (len(segments), 3)))

    def _measure_scene(self, scene: Scene) -> None:
        """Scene centre and size (metres) that scale frustums, markers and axes."""
        points, _ = self._fused_cloud(scene, self.session.frame)
        positions = np.array([c.pose(self.session.frame)[:3, 3] for c in scene.cameras.values()])
        self._centre = np.median(points, axis=0).astype(np.float64) if len(points) else positions.mean(axis=0)
        self._scale_m = float(max(np.median(np.linalg.norm(positions - self._centre, axis=1)), 0.05))
        # What an overview must show: the cameras and the bulk of the cloud (not its far tails).
        bulk = np.percentile(points, [25, 75], axis=0) if len(points) else positions[:1]
        extent = np.concatenate([positions, bulk])
        self._radius_m = float(max(np.linalg.norm(extent - self._centre, axis=1).max(), 0.1)) * 1.1
        self.hover.set_radius(0.012 * self._scale_m)

    @staticmethod
    def _first_camera_intrinsics(scene: Scene) -> tuple[np.ndarray, tuple[int, int]]:
        camera = next(iter(scene.cameras.values()))
        return camera.K, (camera.width, camera.height)

    def _apply_intrinsics(self) -> None:
        if self._intrinsics is None:
            return
        K, image_size = self._intrinsics
        set_vtk_intrinsics(self.plotter.camera, K, image_size, tuple(self.plotter.renderer.GetSize()))
        self.plotter.renderer.ResetCameraClippingRange()
        self._schedule_render()

    # -- interaction -------------------------------------------------------------------------
    def _on_button_press(self, interactor: vtk.vtkRenderWindowInteractor, _event: str) -> None:
        self.begin_interaction()
        self._idle_timer.stop()
        if interactor.GetRepeatCount() >= 1:
            name = self.frustum_at(interactor.GetEventPosition())
            if name is not None:
                self.look_through(name)

    def _restart_idle_timer(self) -> None:
        self._idle_timer.start(self.idle_ms)

    def _end_interaction(self) -> None:
        self.interacting = False
        changed = [
            layer.set_decimated(False) for layer in (self.cloud, self.generated_ref, self.generated_other)
        ]
        if any(changed):
            self._schedule_render()

    def _on_path_slider(self, value: int) -> None:
        if self.camera_path is None or self.session.scene is None:
            return
        self.begin_interaction()
        s = value / PATH_STEPS
        first = self.session.scene.cameras[self.camera_path_names[0]]
        if self._intrinsics is None:
            self._intrinsics = (first.K, (first.width, first.height))
        self.session.set_active_camera(self.camera_path.pose_at(s))

    def _animation_step(self) -> None:
        """One step of a smooth (SE(3), ease-in-out) move; its length is in time, not in frames."""
        if self._animation is None:
            self._animation_timer.stop()
            return
        start, target = self._animation
        s = min(self._animation_clock.elapsed() / ANIMATION_MS, 1.0)
        if s < 1.0:
            pose = interpolate(start, target, s * s * (3.0 - 2.0 * s))
            focal = max(float((self._centre - pose[:3, 3]) @ pose[:3, 2]), 0.1 * self._scale_m)
            set_vtk_pose(self.plotter.camera, pose, focal_distance=focal)
            self.plotter.renderer.ResetCameraClippingRange()
            self.begin_interaction()
            self.render_now()
        else:
            self._animation_timer.stop()
            self._animation = None
            self.session.set_active_camera(target)

    def _ask_viewpoint_name(self) -> None:
        name, ok = QInputDialog.getText(self, "Save viewpoint", "Name:")
        if ok and name.strip():
            self.save_viewpoint(name.strip())


def main(argv: list[str] | None = None) -> int:
    """Open a recording in a lone 3D view, render it and save a screenshot (manual check)."""
    from geo4d_studio.paths import default_sample_scene
    from geo4d_studio.session import Session

    args = sys.argv[1:] if argv is None else argv
    scene_path = Path(args[0]) if args else default_sample_scene()
    out = Path(args[1]) if len(args) > 1 else Path("view3d.png")
    app = QApplication.instance() or QApplication([])
    session = Session()
    dock = View3DDock(session)
    dock.resize(1200, 800)
    dock.show()
    session.open(scene_path)
    app.processEvents()
    dock.render_now()
    dock.grab_image().save(str(out))
    print(f"{out}: {dock.cloud.num_points_total} points, cameras along the path: {dock.camera_path_names}")
    dock.shutdown()
    dock.deleteLater()
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

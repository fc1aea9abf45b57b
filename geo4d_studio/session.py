"""The document every view observes: open scene, time cursor, selected views, 3D camera, results.

Plain Python with psygnal signals (no Qt), so the GUI, scripts and tests share it. Views read state
from here and change it only through the setters; they never call each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from geo4d_studio.generation import (
    Generation,
    list_generations,
    load_generation,
    results_path_for,
    save_generation,
)

if TYPE_CHECKING:
    from geo4d_studio.scene import Scene
    from geo4d_studio.trajectory import Trajectory


class GenerationWindow:
    """Start (condition) frame, horizon (generated frames) and the model's frame stride.

    The next generation predicts recorded frames `start + stride * (1..horizon)`. The timeline and
    the generation panel both edit and display it; neither calls the other.
    """

    changed = Signal(int, int)  # start frame, horizon

    def __init__(self, start: int = 0, horizon: int = 10, stride: int = 1) -> None:
        self.start, self.horizon, self.stride = start, horizon, stride

    def set(self, start: int | None = None, horizon: int | None = None, stride: int | None = None) -> None:
        """Change any of start, horizon and stride; emits only on change."""
        new = (
            self.start if start is None else max(int(start), 0),
            self.horizon if horizon is None else max(int(horizon), 1),
            self.stride if stride is None else max(int(stride), 1),
        )
        if new != (self.start, self.horizon, self.stride):
            self.start, self.horizon, self.stride = new
            self.changed.emit(self.start, self.horizon)

    def frames(self, num_frames: int) -> np.ndarray:
        """Recorded frames the next generation covers, within a recording of `num_frames`."""
        indices = self.start + self.stride * np.arange(1, self.horizon + 1)
        return indices[indices < num_frames]


class Session:
    """Observable state of one open recording (plus its generations and tracks)."""

    scene_changed = Signal(object)  # Scene | None
    frame_changed = Signal(int)
    views_changed = Signal(str, str)  # reference view n, second view m
    visible_cameras_changed = Signal(list)
    active_camera_changed = Signal(object)  # (4, 4) T_world_cam of the 3D view's virtual camera
    generations_changed = Signal()  # the list in the results file changed
    generation_selected = Signal(object)  # Generation | None
    trajectories_changed = Signal()
    viewpoints_changed = Signal()
    hover_point_changed = Signal(object)  # (3,) world point or None

    def __init__(self) -> None:
        self.scene: Scene | None = None
        self.frame = 0
        self.ref_camera = ""
        self.other_camera = ""
        self.visible_cameras: list[str] = []
        self.active_camera: np.ndarray | None = None
        self.generation: Generation | None = None
        self.trajectories: dict[str, Trajectory] = {}
        self.viewpoints: dict[str, np.ndarray] = {}
        self.hover_point: np.ndarray | None = None
        self.generation_window = GenerationWindow()

    # -- scene -------------------------------------------------------------------------------
    def open(self, path: str | Path) -> Scene:
        """Open a recording; on error the previous scene stays open and the error propagates."""
        from geo4d_studio.scene import open_scene

        scene = open_scene(path)
        previous, self.scene = self.scene, scene
        if previous is not None:
            previous.close()
        names = scene.camera_names
        self.frame = 0
        self.ref_camera = names[0]
        self.other_camera = names[1] if len(names) > 1 else names[0]
        self.visible_cameras = list(names)
        self.active_camera = None
        self.generation = None
        self.trajectories = {}
        self.viewpoints = {}
        self.hover_point = None
        self.scene_changed.emit(scene)
        self.generations_changed.emit()
        return scene

    def close(self) -> None:
        """Close the open recording, if any."""
        if self.scene is not None:
            self.scene.close()
            self.scene = None
            self.generation = None
            self.trajectories = {}
            self.scene_changed.emit(None)

    @property
    def num_frames(self) -> int:
        """Frames in the open recording (0 when none is open)."""
        return 0 if self.scene is None else self.scene.num_frames

    @property
    def time_s(self) -> float:
        """Timestamp of the time cursor in seconds."""
        return 0.0 if self.scene is None else float(self.scene.timestamps[self.frame])

    # -- cursor and selection ----------------------------------------------------------------
    def set_frame(self, frame: int) -> None:
        """Move the time cursor (clamped to the recording); emits only on change."""
        frame = int(np.clip(frame, 0, max(self.num_frames - 1, 0)))
        if frame != self.frame:
            self.frame = frame
            self.frame_changed.emit(frame)

    def set_views(self, ref_camera: str, other_camera: str) -> None:
        """Choose reference view n and second view m."""
        self._require_cameras([ref_camera, other_camera])
        if (ref_camera, other_camera) != (self.ref_camera, self.other_camera):
            self.ref_camera, self.other_camera = ref_camera, other_camera
            self.views_changed.emit(ref_camera, other_camera)

    def set_visible_cameras(self, names: list[str]) -> None:
        """Choose which cameras the panes and the fused cloud show (file order is kept)."""
        self._require_cameras(names)
        ordered = [n for n in (self.scene.camera_names if self.scene else []) if n in set(names)]
        if ordered != self.visible_cameras:
            self.visible_cameras = ordered
            self.visible_cameras_changed.emit(ordered)

    def set_active_camera(self, T_world_cam: np.ndarray) -> None:
        """Set the 3D view's virtual camera pose (camera-to-world, OpenCV axes)."""
        self.active_camera = np.asarray(T_world_cam, dtype=np.float64).reshape(4, 4)
        self.active_camera_changed.emit(self.active_camera)

    def save_viewpoint(self, name: str, T_world_cam: np.ndarray | None = None) -> None:
        """Remember a named viewpoint (the active camera when no pose is given)."""
        pose = self.active_camera if T_world_cam is None else T_world_cam
        if pose is None:
            raise ValueError("no active camera to save as a viewpoint")
        self.viewpoints[name] = np.asarray(pose, dtype=np.float64).reshape(4, 4)
        self.viewpoints_changed.emit()

    def set_hover_point(self, point_world: np.ndarray | None) -> None:
        """Mark a 3D point (from hovering a pixel) in every view; None clears it."""
        self.hover_point = None if point_world is None else np.asarray(point_world, float).reshape(3)
        self.hover_point_changed.emit(self.hover_point)

    # -- generations and tracks --------------------------------------------------------------
    @property
    def results_path(self) -> Path | None:
        """The results file beside the open recording (may not exist yet)."""
        return None if self.scene is None else results_path_for(self.scene.path)

    def list_generations(self) -> list[dict]:
        """Summaries of the generations saved beside the recording, oldest first."""
        path = self.results_path
        return [] if path is None or not path.exists() else list_generations(path)

    def add_generation(self, generation: Generation) -> str:
        """Save a new generation to the results file and select it; returns its id."""
        if self.results_path is None:
            raise ValueError("no scene is open")
        gen_id = save_generation(self.results_path, generation)
        self.generations_changed.emit()
        self.select_generation(gen_id)
        return gen_id

    def select_generation(self, gen_id: str | None) -> None:
        """Load and select a saved generation (None deselects)."""
        if gen_id is None or self.results_path is None:
            self.generation = None
        else:
            self.generation = load_generation(self.results_path, gen_id)
        self.generation_selected.emit(self.generation)

    def add_trajectory(self, name: str, trajectory: Trajectory) -> None:
        """Add (or replace) a named trajectory, e.g. "tracked gen-0001 front"."""
        self.trajectories[name] = trajectory
        self.trajectories_changed.emit()

    def _require_cameras(self, names: list[str]) -> None:
        known = set(self.scene.camera_names) if self.scene else set()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown camera(s): {', '.join(unknown)}")

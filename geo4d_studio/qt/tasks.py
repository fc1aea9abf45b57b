"""Track and Export commands of the menus: each asks for its inputs, then runs in a worker.

Tracking adds a trajectory to the session (plots and 3D view show it); exports write files
atomically through `geo4d_studio.export`. Features light up only when their package is present.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from geo4d_studio.errors import Geo4DError
from geo4d_studio.qt.dialogs import show_error
from geo4d_studio.qt.export_dialog import ExportChoice, ExportDialog, ask_export
from geo4d_studio.qt.workers import Cancelled, Worker
from geo4d_studio.session import Session
from geo4d_studio.trajectory import Trajectory

TRACKING = "geo4d_studio.tracking.scene_tracking"
TRAJECTORY_IO = "geo4d_studio.export.trajectory_io"
CLIPS = "geo4d_studio.export.clips"
TRAJECTORY_FORMATS = (("CSV", "csv"), ("JSON", "json"), ("NumPy", "npz"), ("TUM", "tum"))
GENERATION_FORMATS = {
    "mp4": ("MP4 video", "mp4"),
    "scene": ("HDF5 scene", "h5"),
    "ply": ("PLY clouds", "ply"),
}


def available(module: str) -> bool:
    """Whether an optional package module is installed in this build."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def ground_truth_trajectory(scene: Any) -> Trajectory:
    """The recording's /robot/ee_pose as a Trajectory (every frame, confidence 1)."""
    if scene.ee_pose is None:
        raise Geo4DError(f"{scene.path}: /robot/ee_pose: missing, there is no ground-truth trajectory")
    n = scene.num_frames
    width = scene.gripper_width if scene.gripper_width is not None else np.full(n, np.nan)
    return Trajectory(
        timestamps=scene.timestamps,
        poses=scene.ee_pose,
        gripper_width=width,
        confidence=np.ones(n),
        frames=np.arange(n),
        lost=np.zeros(n, bool),
        source_view=["recorded"] * n,
        metadata={"scene": str(scene.path), "source": "ground truth /robot/ee_pose", "units": "m, s"},
    )


class Tasks(QObject):
    """Runs one track/export job at a time; reports through the status bar and error dialogs."""

    message = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, session: Session, pool: QThreadPool, parent: QWidget) -> None:
        super().__init__(parent)
        self.session, self.pool, self.parent_widget = session, pool, parent
        self.worker: Worker | None = None
        self.busy = False  # True from start until the job's outcome reached the GUI thread

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.busy_changed.emit(busy)

    def _ended(self, worker: Worker) -> bool:
        """Outcome of `worker` reached the GUI thread: not busy any more. False for a stale worker."""
        if worker is not self.worker:
            return False
        self._set_busy(False)
        return True

    def cancel(self) -> None:
        """Ask the running job to stop."""
        if self.worker is not None:
            self.worker.cancel()

    def run(
        self,
        title: str,
        job: Callable[[Callable[[], bool], Callable[[int, int, str], None]], Any],
        on_done: Callable[[Any], None],
    ) -> Worker | None:
        """Start `job` in a worker unless one runs; `on_done(result)` runs in the GUI thread."""
        if self.busy:
            show_error(self.parent_widget, title, "another track or export job is still running")
            return None
        worker = Worker(job)
        signals = worker.signals
        signals.progress.connect(
            lambda done, total, text: self.message.emit(f"{title}: {text} {done}/{total}")
        )
        signals.finished.connect(lambda result: self._ended(worker) and on_done(result))
        signals.failed.connect(lambda msg: self._ended(worker) and show_error(self.parent_widget, title, msg))
        signals.cancelled.connect(lambda: self._ended(worker) and self.message.emit(f"{title}: cancelled"))
        self.worker = worker
        self._set_busy(True)
        self.message.emit(f"{title}…")
        self.pool.start(worker)
        return worker

    # -- tracking ------------------------------------------------------------------------------
    def track_generation(self) -> Worker | None:
        """Track the gripper in the selected generation's predicted pointmaps (views n and m)."""
        gen, scene = self.session.generation, self.session.scene
        if gen is None or scene is None:
            show_error(self.parent_widget, "Track gripper", "select a generation first")
            return None
        path = Path(scene.path)

        def job(cancelled: Callable[[], bool], report: Callable[[int, int, str], None]) -> Trajectory:
            from geo4d_studio.scene import open_scene
            from geo4d_studio.tracking.scene_tracking import track_generation

            with open_scene(path) as own:
                return track_generation(own, gen, progress=_progress(cancelled, report, "frame"))

        name = f"tracked {gen.id}"
        return self.run("Track gripper", job, lambda traj: self._add_track(name, traj))

    def track_recorded(self) -> Worker | None:
        """Track the gripper on the recorded RGB-D of the visible cameras (all frames)."""
        scene = self.session.scene
        if scene is None:
            return None
        path, views = Path(scene.path), list(self.session.visible_cameras)

        def job(cancelled: Callable[[], bool], report: Callable[[int, int, str], None]) -> Trajectory:
            from geo4d_studio.scene import open_scene
            from geo4d_studio.tracking.scene_tracking import track_recorded

            with open_scene(path) as own:
                return track_recorded(own, views, progress=_progress(cancelled, report, "view-frame"))

        return self.run(
            "Track gripper (recorded)", job, lambda traj: self._add_track("tracked recording", traj)
        )

    def _add_track(self, name: str, trajectory: Trajectory) -> None:
        self.session.add_trajectory(name, trajectory)
        lost = int(trajectory.lost.sum())
        self.message.emit(f"{name}: {len(trajectory)} poses, {lost} lost")

    # -- exports -------------------------------------------------------------------------------
    def trajectories(self) -> dict[str, Trajectory]:
        """Exportable trajectories: the ground truth (when recorded) and every track."""
        scene = self.session.scene
        out = (
            {} if scene is None or scene.ee_pose is None else {"ground truth": ground_truth_trajectory(scene)}
        )
        return {**out, **self.session.trajectories}

    def export_trajectory(
        self, name: str, path: str | Path, frames: list[int] | None = None, overwrite: bool = False
    ) -> Worker | None:
        """Write trajectory `name` (only `frames`, when given) to `path` (format from the suffix)."""
        traj = self.trajectories()[name]
        if frames is not None:
            traj = traj.select_frames(frames)

        def job(_cancelled: Callable[[], bool], _report: Callable[[int, int, str], None]) -> Path:
            from geo4d_studio.export.trajectory_io import write_trajectory

            return write_trajectory(traj, path, overwrite=overwrite)

        return self.run("Export trajectory", job, lambda out: self.message.emit(f"wrote {out}"))

    def export_generation(
        self, kind: str, path: str | Path, frames: list[int] | None = None, overwrite: bool = False
    ) -> Worker | None:
        """Export the selected generation: "mp4" (recorded | generated, view n), "scene" (HDF5), or
        "ply" (one cloud per generated frame; only the recorded frame numbers `frames`, when given)."""
        gen, scene = self.session.generation, self.session.scene
        if gen is None or scene is None:
            show_error(self.parent_widget, "Export", "select a generation first")
            return None
        scene_path = Path(scene.path)
        indices = None if frames is None else np.flatnonzero(np.isin(gen.frame_indices, frames)).tolist()

        def job(cancelled: Callable[[], bool], report: Callable[[int, int, str], None]) -> Any:
            from geo4d_studio.export import clips
            from geo4d_studio.scene import open_scene

            with open_scene(scene_path) as own:
                if kind == "mp4":
                    return clips.write_comparison_mp4(own, gen, path, overwrite=overwrite)
                if kind == "scene":
                    return clips.write_generation_scene(own, gen, path, overwrite=overwrite)
                progress = _progress(cancelled, report, "files")
                return clips.write_generation_ply(
                    own, gen, path, indices=indices, overwrite=overwrite, progress=progress
                )

        return self.run("Export generation", job, lambda out: self.message.emit(f"wrote {_describe(out)}"))

    def export_recorded_cloud(
        self, path: str | Path, frames: list[int] | None = None, overwrite: bool = False
    ) -> Worker | None:
        """Fused clouds of the visible cameras at `frames` (default: the time cursor) as PLY."""
        scene = self.session.scene
        if scene is None:
            return None
        scene_path, cams = Path(scene.path), list(self.session.visible_cameras)
        frames = [self.session.frame] if frames is None else list(frames)

        def job(cancelled: Callable[[], bool], report: Callable[[int, int, str], None]) -> Any:
            from geo4d_studio.export.clips import write_recorded_ply
            from geo4d_studio.scene import open_scene

            with open_scene(scene_path) as own:
                progress = _progress(cancelled, report, "files")
                return write_recorded_ply(
                    own, path, frames, cameras=cams, overwrite=overwrite, progress=progress
                )

        return self.run("Export cloud", job, lambda out: self.message.emit(f"wrote {_describe(out)}"))

    # -- menus ---------------------------------------------------------------------------------
    def fill_menus(self, track_menu: QMenu, export_menu: QMenu) -> None:
        """Add the commands whose packages are installed; the others appear disabled with a reason."""
        track = available(TRACKING)
        for text, slot in (
            ("Track gripper in the selected &generation", self.track_generation),
            ("Track gripper in the &recording", self.track_recorded),
        ):
            action = track_menu.addAction(text)
            action.triggered.connect(slot)
            action.setEnabled(track)
        cancel = track_menu.addAction("Cancel the running job")
        cancel.triggered.connect(self.cancel)
        exports = (
            ("&Trajectory (CSV, JSON, NPZ, TUM)…", TRAJECTORY_IO, self.choose_trajectory_export),
            ("Generation as &video (MP4)…", CLIPS, lambda: self.choose_generation_export("mp4")),
            ("Generation as &scene (HDF5)…", CLIPS, lambda: self.choose_generation_export("scene")),
            ("Generated &clouds (PLY)…", CLIPS, lambda: self.choose_generation_export("ply")),
            ("Recorded &clouds (PLY)…", CLIPS, self.choose_cloud_export),
        )
        for text, module, slot in exports:
            action = export_menu.addAction(text)
            action.triggered.connect(slot)
            action.setEnabled(available(module))

    def _default_path(self, name: str) -> Path:
        return self.session.scene.path.with_name(name) if self.session.scene else Path(name).resolve()

    def choose_trajectory_export(self) -> None:
        """Ask which trajectory, then format, frames and file; export it."""
        names = list(self.trajectories())
        if not names:
            show_error(
                self.parent_widget, "Export trajectory", "no trajectory: no ground truth and no tracks"
            )
            return
        name, ok = QInputDialog.getItem(
            self.parent_widget, "Export trajectory", "trajectory", names, 0, False
        )
        if not ok:
            return
        path = self._default_path(name.replace(" ", "_") + ".csv")
        frames = self.trajectories()[name].frames
        dialog = ExportDialog(self.parent_widget, f"Export {name}", path, TRAJECTORY_FORMATS, frames)
        choice = ask_export(dialog)
        if choice is not None:
            self.export_trajectory(name, choice.path, choice.frames, choice.overwrite)

    def choose_generation_export(self, kind: str) -> None:
        """Ask for the file (and, for clouds, the frames), then export the selected generation."""
        gen = self.session.generation
        if gen is None:
            show_error(self.parent_widget, "Export", "select a generation first")
            return
        label, suffix = GENERATION_FORMATS[kind]
        frames = gen.frame_indices if kind == "ply" else ()
        dialog = ExportDialog(
            self.parent_widget,
            f"Export {gen.id}",
            self._default_path(f"{gen.id}.{suffix}"),
            [(label, suffix)],
            frames,
            targets=_ply_targets if kind == "ply" else None,
        )
        choice = ask_export(dialog)
        if choice is not None:
            self.export_generation(kind, choice.path, choice.frames or None, choice.overwrite)

    def choose_cloud_export(self) -> None:
        """Ask for frames (default: the time cursor) and file, then export the recorded clouds."""
        frame = self.session.frame
        dialog = ExportDialog(
            self.parent_widget,
            "Export recorded clouds",
            self._default_path(f"cloud_{frame:04d}.ply"),
            [("PLY", "ply")],
            range(self.session.num_frames),
            selected=(frame, frame),
            targets=_ply_targets,
        )
        choice = ask_export(dialog)
        if choice is not None:
            self.export_recorded_cloud(choice.path, choice.frames, choice.overwrite)


def _ply_targets(choice: ExportChoice) -> list[Path]:
    from geo4d_studio.export.clips import ply_sequence_paths

    return ply_sequence_paths(choice.path, choice.frames)


def _progress(cancelled: Callable[[], bool], report: Callable[[int, int, str], None], unit: str):
    """A progress callback that reports and stops the job when cancelled."""

    def progress(done: int, total: int) -> None:
        if cancelled():
            raise Cancelled
        report(done, total, unit)

    return progress


def _describe(out: Any) -> str:
    if isinstance(out, list):
        return f"{len(out)} file(s), first {out[0]}" if out else "nothing"
    return str(out)

"""`SceneWriter`: write a `geo4d-scene` v1 recording atomically, validating every input.

The file is written to a temporary path beside the target; `close()` (or leaving the `with` block)
re-validates it with the reader's checks and renames it into place. An error leaves no file behind.
Pixel datasets hold one frame per chunk (shuffle + gzip + Fletcher-32 checksum), so readers decode
exactly one frame per call and a corrupt chunk is detected rather than returned as garbage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import schema
from geo4d_studio.scene.metadata import read_metadata

PIXEL_FILTERS: dict[str, Any] = {
    "compression": "gzip",
    "compression_opts": 4,
    "shuffle": True,
    "fletcher32": True,
}
UINT16_MAX = np.iinfo(np.uint16).max

FrameConverter = Callable[[np.ndarray, str, int], np.ndarray]


def _set_text_attr(h5: h5py.File, name: str, text: str) -> None:
    """Store text as a fixed-length UTF-8 attribute: it lives in the attribute itself, not in HDF5's global
    heap, so a damaged file cannot make a reader chase a corrupt heap reference (seen to hang HDF5)."""
    data = text.encode()
    h5.attrs.create(name, np.bytes_(data), dtype=h5py.string_dtype("utf-8", max(len(data), 1)))


class SceneWriter:
    """Write a recording: `add_camera` per view, optionally `set_robot`, then `close()`.

    `depth_scale` (metres per unit, e.g. 1e-4) stores depth as uint16 (smaller files, 0.1 mm steps
    up to 6.55 m); without it depth is stored as float32 metres. Readers always get float32 metres.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        timestamps: np.ndarray,
        task: str = "",
        source: str = "",
        overwrite: bool = False,
        depth_scale: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.timestamps = np.asarray(timestamps, dtype=np.float64)
        schema.check_timestamps(self.path, self.timestamps)
        if not np.isfinite(fps) or fps <= 0:
            raise SceneFormatError(self.path, "/", f"fps is {fps!r}, expected a number > 0")
        self.depth_scale = (
            None if depth_scale is None else schema.check_depth_scale(self.path, "depth_scale", depth_scale)
        )
        self.num_frames = int(self.timestamps.shape[0])
        self._atomic = atomic_path(self.path, overwrite=overwrite)
        self._tmp = self._atomic.__enter__()
        self._closed = False
        try:
            self._h5 = h5py.File(self._tmp, "w")
            for name, text in (
                ("format", schema.FORMAT_NAME),
                ("task", task),
                ("source", source),
                ("units", schema.UNITS),
            ):
                _set_text_attr(self._h5, name, text)
            self._h5.attrs["version"] = schema.FORMAT_VERSION
            self._h5.attrs["fps"] = float(fps)
            self._h5.create_dataset(schema.TIMESTAMPS, data=self.timestamps)
            self._cameras = self._h5.create_group(schema.CAMERAS, track_order=True)
        except BaseException as err:
            self._discard(err)
            raise

    def __enter__(self) -> SceneWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        elif not self._closed:
            self._discard(exc)

    def add_camera(
        self,
        name: str,
        K: np.ndarray,
        T_world_cam: np.ndarray,
        rgb: np.ndarray | Iterable[np.ndarray],
        depth: np.ndarray | Iterable[np.ndarray],
        gripper_mask: np.ndarray | Iterable[np.ndarray] | None = None,
    ) -> None:
        """Add a view. `K` (3, 3); `T_world_cam` (4, 4) static or (T, 4, 4); `rgb` (T, H, W, 3) uint8,
        `depth` (T, H, W) metres, `gripper_mask` (T, H, W) bool, each an array or an iterable of frames."""
        self._check_open()
        schema.check_camera_name(self.path, name)
        if name in self._cameras:
            raise SceneFormatError(self.path, schema.camera_field(name), "camera added twice")
        K = np.asarray(K, dtype=np.float64)
        schema.check_intrinsics(self.path, schema.camera_field(name, "K"), K)
        poses = np.asarray(T_world_cam, dtype=np.float64)
        schema.check_poses(self.path, schema.camera_field(name, "T_world_cam"), poses, self.num_frames)
        group = self._cameras.create_group(name)
        try:
            group.create_dataset("K", data=K)
            group.create_dataset("T_world_cam", data=poses)
            size = self._write_frames(group, "rgb", rgb, self._rgb_frame, None)
            self._write_frames(group, "depth", depth, self._depth_frame, size)
            if self.depth_scale is not None:
                group["depth"].attrs[schema.DEPTH_SCALE_ATTR] = self.depth_scale
            if gripper_mask is not None:
                self._write_frames(group, "gripper_mask", gripper_mask, self._mask_frame, size)
        except BaseException:
            del self._cameras[name]
            raise

    def set_robot(
        self,
        ee_pose: np.ndarray,
        gripper_width: np.ndarray,
        mesh_vertices: np.ndarray | None = None,
        mesh_faces: np.ndarray | None = None,
    ) -> None:
        """Robot ground truth: tool poses (T, 4, 4) in world, gripper opening (T,) metres, and
        optionally the gripper mesh in the tool frame (vertices (V, 3), faces (F, 3))."""
        self._check_open()
        if schema.ROBOT in self._h5:
            raise SceneFormatError(self.path, schema.ROBOT, "robot data set twice")
        ee_pose = np.asarray(ee_pose, dtype=np.float64)
        schema.check_shape(self.path, schema.EE_POSE, ee_pose.shape, (self.num_frames, 4, 4))
        schema.check_rigid(self.path, schema.EE_POSE, ee_pose)
        width = np.asarray(gripper_width, dtype=np.float32)
        schema.check_gripper_width(self.path, width, self.num_frames)
        if (mesh_vertices is None) != (mesh_faces is None):
            raise SceneFormatError(self.path, "/robot/gripper_mesh", "needs both vertices and faces")
        datasets = {schema.EE_POSE: ee_pose, schema.GRIPPER_WIDTH: width}
        if mesh_vertices is not None:
            vertices = np.asarray(mesh_vertices, dtype=np.float32)
            faces = np.asarray(mesh_faces)
            if not np.issubdtype(faces.dtype, np.integer):
                raise SceneFormatError(
                    self.path, schema.MESH_FACES, f"dtype {faces.dtype}, expected integers"
                )
            faces = faces.astype(np.int32)
            schema.check_mesh(self.path, vertices, faces)
            datasets |= {schema.MESH_VERTICES: vertices, schema.MESH_FACES: faces}
        for name, data in datasets.items():
            self._h5.create_dataset(name, data=data)

    def close(self) -> Path:
        """Finish the file: re-validate it and move it into place. Returns the final path."""
        if self._closed:
            return self.path
        try:
            if len(self._cameras) == 0:
                raise SceneFormatError(self.path, schema.CAMERAS, "no camera added")
            self._h5.close()
            with h5py.File(self._tmp, "r") as h5:
                _, found = read_metadata(h5, self.path)
            if found.problems:
                raise found.problems[0]
        except BaseException as err:
            self._discard(err)
            raise
        self._closed = True
        self._atomic.__exit__(None, None, None)
        return self.path

    def _discard(self, err: BaseException) -> None:
        """Close and delete the temporary file."""
        self._closed = True
        if hasattr(self, "_h5"):
            self._h5.close()
        self._atomic.__exit__(type(err), err, err.__traceback__)

    def _check_open(self) -> None:
        if self._closed:
            raise SceneFormatError(self.path, "/", "writer is already closed")

    def _write_frames(
        self,
        group: h5py.Group,
        kind: str,
        frames: np.ndarray | Iterable[np.ndarray],
        convert: FrameConverter,
        size: tuple[int, int] | None,
    ) -> tuple[int, int]:
        """Write frames one chunk at a time; returns the image size (H, W)."""
        field = f"{group.name}/{kind}"
        ds: h5py.Dataset | None = None
        count = 0
        for t, frame in enumerate(frames):
            if t >= self.num_frames:
                raise SceneFormatError(
                    self.path, field, f"more than {self.num_frames} frames (one per timestamp)"
                )
            data = convert(np.asarray(frame), field, t)
            if ds is None:
                size = size or (int(data.shape[0]), int(data.shape[1]))
                shape = (self.num_frames, *size, *data.shape[2:])
                ds = group.create_dataset(
                    kind, shape=shape, dtype=data.dtype, chunks=(1, *shape[1:]), **PIXEL_FILTERS
                )
            if data.shape != ds.shape[1:]:
                raise SceneFormatError(
                    self.path, field, f"frame {t}: shape {data.shape}, expected {ds.shape[1:]}"
                )
            ds[t] = data
            count = t + 1
        schema.check_frame_count(self.path, field, count, self.num_frames)
        return size

    def _rgb_frame(self, frame: np.ndarray, field: str, t: int) -> np.ndarray:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise SceneFormatError(
                self.path, field, f"frame {t}: {frame.dtype} {frame.shape}, expected uint8 (H, W, 3)"
            )
        return frame

    def _depth_frame(self, frame: np.ndarray, field: str, t: int) -> np.ndarray:
        if not np.issubdtype(frame.dtype, np.floating) or frame.ndim != 2:
            raise SceneFormatError(
                self.path, field, f"frame {t}: {frame.dtype} {frame.shape}, expected float (H, W)"
            )
        depth = frame.astype(np.float32, copy=False)
        schema.check_depth_values(self.path, field, depth, f"frame {t}: ")
        if self.depth_scale is None:
            return depth
        units = np.rint(depth / self.depth_scale)
        if units.max(initial=0) > UINT16_MAX:
            limit = UINT16_MAX * self.depth_scale
            raise SceneFormatError(
                self.path,
                field,
                f"frame {t}: depth {depth.max():.3f} m exceeds {limit:.4g} m (uint16 × depth_scale)",
            )
        return units.astype(np.uint16)

    def _mask_frame(self, frame: np.ndarray, field: str, t: int) -> np.ndarray:
        if not (frame.dtype == np.bool_ or np.issubdtype(frame.dtype, np.integer)) or frame.ndim != 2:
            raise SceneFormatError(
                self.path, field, f"frame {t}: {frame.dtype} {frame.shape}, expected bool (H, W)"
            )
        return (frame != 0).astype(np.uint8)

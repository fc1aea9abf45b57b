"""`Scene`: a lazy, read-only view of a `geo4d-scene` recording; `open_scene` opens and validates one.

Opening reads and checks the metadata only (timestamps, calibration, robot arrays). Pixels are read
per call, one HDF5 chunk per frame. The object holds no per-call state, so the GUI's worker thread
and the main thread may read from it at the same time (h5py serialises access with its own lock).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import schema
from geo4d_studio.scene.camera import Camera
from geo4d_studio.scene.frame_cache import FrameCache
from geo4d_studio.scene.metadata import H5_ERRORS, Findings, SceneMetadata, read_metadata

PIXEL_KINDS = ("rgb", "depth", "gripper_mask")
FRAME_CACHE_BYTES = 64 * 2**20  # decoded frames kept per open scene (a 4-camera sample episode fits)


def open_h5(path: str | Path) -> h5py.File:
    """Open `path` read-only, turning every way it can fail into a SceneFormatError naming the file."""
    path = Path(path)
    if not path.exists():
        raise SceneFormatError(path, "file", "does not exist")
    if path.is_dir():
        raise SceneFormatError(path, "file", "is a directory, expected a .h5 scene file")
    if not os.access(path, os.R_OK):
        raise SceneFormatError(path, "file", "is not readable (permission denied)")
    try:
        # Frames are read whole, one chunk each: no chunk cache needed, HDF5 decodes straight into numpy.
        return h5py.File(path, "r", rdcc_nbytes=0)
    except OSError as err:
        raise SceneFormatError(path, "file", "not a readable HDF5 file (truncated or corrupt?)") from err


def inspect_file(path: str | Path) -> tuple[h5py.File, SceneMetadata | None, Findings]:
    """Open `path` and validate its metadata; the caller owns (and closes) the returned file."""
    h5 = open_h5(path)
    try:
        metadata, found = read_metadata(h5, Path(path))
    except BaseException:
        h5.close()
        raise
    return h5, metadata, found


class Scene:
    """A recording opened read-only; use as a context manager or call `close()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._h5, metadata, found = inspect_file(self.path)
        if metadata is None:
            self._h5.close()
            raise found.problems[0]
        self.fps = metadata.fps
        self.task = metadata.task
        self.source = metadata.source
        self.timestamps = metadata.timestamps
        self.num_frames = int(self.timestamps.shape[0])
        self.cameras: dict[str, Camera] = metadata.cameras
        self.camera_names: list[str] = list(self.cameras)
        self.ee_pose = metadata.ee_pose
        self.gripper_width = metadata.gripper_width
        self.gripper_mesh = metadata.gripper_mesh
        self.warnings: list[str] = found.warnings
        self._depth_scales = metadata.depth_scales
        self._datasets: dict[tuple[str, str], h5py.Dataset] = {
            (cam, kind): self._h5[schema.camera_field(cam, kind)]
            for cam in self.camera_names
            for kind in PIXEL_KINDS
            if kind != "gripper_mask" or cam in metadata.mask_cameras
        }
        self._frames = FrameCache(FRAME_CACHE_BYTES)

    def __enter__(self) -> Scene:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Scene({str(self.path)!r}, cameras={self.camera_names}, frames={self.num_frames})"

    def close(self) -> None:
        """Close the file; later pixel reads fail."""
        self._frames.clear()
        self._h5.close()

    def _frame(self, cam: str, kind: str, t: int) -> np.ndarray:
        """Frame `t` of one camera's dataset as the readers return it: decoded and read-only. Cached:
        every pane and the 3D view read the same frame when the time cursor moves, and scrubbing
        revisits frames."""
        key = (cam, kind, t)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._decode(cam, kind, t, self._read(cam, kind, t))
            frame.flags.writeable = False
            self._frames.put(key, frame)
        return frame

    def _read(self, cam: str, kind: str, t: int) -> np.ndarray:
        if cam not in self.cameras:
            raise KeyError(f"{self.path}: no camera {cam!r} (cameras: {', '.join(self.camera_names)})")
        if not 0 <= t < self.num_frames:
            raise IndexError(f"{self.path}: frame {t} out of range 0..{self.num_frames - 1}")
        ds = self._datasets[(cam, kind)]
        try:
            return ds[t]
        except H5_ERRORS as err:
            raise SceneFormatError(self.path, ds.name, f"frame {t}: cannot be read ({err})") from err

    def _decode(self, cam: str, kind: str, t: int, stored: np.ndarray) -> np.ndarray:
        """Depth in float32 metres (scaled, or checked for NaN/inf), masks as bool, colour as stored."""
        if kind == "gripper_mask":
            return stored.astype(bool, copy=False)
        if kind != "depth":
            return stored
        scale = self._depth_scales[cam]
        if scale is not None:
            return np.multiply(stored, np.float32(scale), dtype=np.float32)
        schema.check_depth_values(self.path, schema.camera_field(cam, "depth"), stored, f"frame {t}: ")
        return stored

    def rgb(self, cam: str, t: int) -> np.ndarray:
        """Colour image of camera `cam` at frame `t`: (H, W, 3) uint8, read-only."""
        return self._frame(cam, "rgb", t)

    def depth(self, cam: str, t: int) -> np.ndarray:
        """Depth of camera `cam` at frame `t`: (H, W) float32 metres, 0 = invalid, read-only; NaN/inf
        raise."""
        return self._frame(cam, "depth", t)

    def depth_scale(self, cam: str) -> float | None:
        """Metres per stored unit when camera `cam` stores depth as uint16; None for float32 metres."""
        return self._depth_scales[cam]

    def has_gripper_mask(self, cam: str) -> bool:
        """Whether camera `cam` has a recorded gripper mask."""
        return (cam, "gripper_mask") in self._datasets

    def gripper_mask(self, cam: str, t: int) -> np.ndarray | None:
        """Gripper mask of camera `cam` at frame `t`: (H, W) bool, read-only, or None when not recorded."""
        if cam in self.cameras and not self.has_gripper_mask(cam):
            return None
        return self._frame(cam, "gripper_mask", t)


def open_scene(path: str | Path) -> Scene:
    """Open and validate a recording (metadata, shapes, dtypes, calibration); raises SceneFormatError."""
    return Scene(path)

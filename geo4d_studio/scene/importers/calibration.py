"""Camera calibration files for importers: the intrinsics, extrinsics and depth ranges a dataset lacks.

JSON layout (NPZ: the same names flattened as `<camera>.K`, `<camera>.T_world_cam`, ..., plus `fps`)::

    {
      "fps": 20,                                   # optional
      "cameras": {
        "agentview": {
          "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],        # pixels
          "T_world_cam": [[...4x4...]] or [[[...]], ...],    # camera-to-world, static or one per frame
          "near": 0.01, "far": 5.0,                          # metres, when depth is normalised
          "depth_encoding": "metres" | "zbuffer" | "linear"  # optional, importer-specific default
        }
      }
    }

`T_world_cam` uses OpenCV camera axes (x right, y down, z forward) unless `K` has negative focal
lengths: that is PyRep's (RLBench's) convention, x left and y up, converted here by turning the camera
frame 180° about its z axis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geo4d_studio.errors import SceneFormatError

DEPTH_ENCODINGS = ("metres", "zbuffer", "linear")
PYREP_TO_OPENCV = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class CameraCalibration:
    """One camera: `K` (3, 3) pixels, `T_world_cam` (4, 4) or (T, 4, 4) OpenCV camera-to-world."""

    K: np.ndarray
    T_world_cam: np.ndarray
    near: float | None = None
    far: float | None = None
    depth_encoding: str | None = None

    def depth_to_metres(self, depth: np.ndarray, path: Path, field: str) -> np.ndarray:
        """Decode a depth image with this camera's encoding; 0 (and the far plane) = invalid."""
        encoding = self.depth_encoding or "metres"
        depth = depth.astype(np.float32)
        if encoding == "metres":
            return depth
        if self.near is None or self.far is None:
            raise SceneFormatError(path, field, f"{encoding} depth needs 'near' and 'far' in the calibration")
        near, far = np.float32(self.near), np.float32(self.far)
        at_far = depth >= 1.0
        if encoding == "zbuffer":  # OpenGL depth buffer (robosuite, MuJoCo): non-linear in [0, 1]
            metres = near / (1.0 - depth * (1.0 - near / far))
        else:  # linear in [0, 1] between near and far (RLBench, PyRep)
            metres = near + depth * (far - near)
        return np.where(at_far | (depth <= 0), np.float32(0.0), metres).astype(np.float32)


def _array(path: Path, field: str, value: Any, shapes: tuple[tuple[int | None, ...], ...]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SceneFormatError(path, field, "not a numeric array") from err
    for shape in shapes:
        if len(shape) == array.ndim and all(
            s is None or s == a for s, a in zip(shape, array.shape, strict=True)
        ):
            return array
    raise SceneFormatError(path, field, f"shape {array.shape}, expected one of {shapes}")


def _optional_float(path: Path, field: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(np.asarray(value).item())
    except (TypeError, ValueError) as err:
        raise SceneFormatError(path, field, f"{value!r} is not a number") from err
    if not np.isfinite(number) or number <= 0:
        raise SceneFormatError(path, field, f"{number} must be a positive number of metres")
    return number


def _camera(path: Path, name: str, entry: dict[str, Any]) -> CameraCalibration:
    prefix = f"cameras.{name}"
    for key in ("K", "T_world_cam"):
        if key not in entry:
            raise SceneFormatError(path, f"{prefix}.{key}", "missing")
    K = _array(path, f"{prefix}.K", entry["K"], ((3, 3),))
    T = _array(path, f"{prefix}.T_world_cam", entry["T_world_cam"], ((4, 4), (None, 4, 4)))
    encoding = entry.get("depth_encoding")
    if encoding is not None and str(encoding) not in DEPTH_ENCODINGS:
        raise SceneFormatError(
            path, f"{prefix}.depth_encoding", f"{encoding!r}, expected one of {DEPTH_ENCODINGS}"
        )
    if K[0, 0] < 0 and K[1, 1] < 0:
        K = K * np.array([[-1.0], [-1.0], [1.0]])
        T = T @ PYREP_TO_OPENCV
    return CameraCalibration(
        K=K,
        T_world_cam=T,
        near=_optional_float(path, f"{prefix}.near", entry.get("near")),
        far=_optional_float(path, f"{prefix}.far", entry.get("far")),
        depth_encoding=None if encoding is None else str(encoding),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SceneFormatError(path, f"line {err.lineno}", f"invalid JSON ({err.msg})") from err
    except UnicodeDecodeError as err:
        raise SceneFormatError(path, "file", "not a text file: expected calibration JSON or .npz") from err
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        raise SceneFormatError(path, "cameras", "missing: expected an object of camera name → calibration")
    return data


def _read_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise SceneFormatError(path, "file", f"not a readable NPZ file ({err})") from err
    data: dict[str, Any] = {"cameras": {}}
    for key, value in flat.items():
        camera, _, field = key.rpartition(".")
        if camera:
            data["cameras"].setdefault(camera, {})[field] = value.item() if value.ndim == 0 else value
        else:
            data[key] = value.item() if value.ndim == 0 else value
    return data


def load_calibration(path: str | Path) -> tuple[dict[str, CameraCalibration], dict[str, Any]]:
    """Read a .json or .npz calibration; returns the cameras and the remaining top-level entries."""
    path = Path(path)
    if not path.is_file():
        raise SceneFormatError(path, "file", "calibration file does not exist")
    data = _read_npz(path) if path.suffix.lower() == ".npz" else _read_json(path)
    cameras = {name: _camera(path, name, dict(entry)) for name, entry in data.pop("cameras").items()}
    return cameras, data


def require_camera(
    calibration: dict[str, CameraCalibration], path: Path | None, camera: str
) -> CameraCalibration:
    """The calibration of `camera`, or a clear error naming it."""
    if camera not in calibration:
        where = path if path is not None else Path("calibration")
        have = ", ".join(calibration) or "none"
        raise SceneFormatError(
            where, f"cameras.{camera}", f"missing calibration for camera {camera} (have: {have})"
        )
    return calibration[camera]

"""The `geo4d-scene` v1 layout (DESIGN.md §2) and the array checks shared by the writer and the reader.

Every check takes the file path and the dataset path (`field`) so that a failure reads
`scene.h5: /cameras/front/K: focal length fx is 0`. Checks accept numpy arrays or h5py datasets
for shape/dtype tests (only `.shape` and `.dtype` are touched) and numpy arrays for value tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from geo4d_studio.errors import SceneFormatError

FORMAT_NAME = "geo4d-scene"
FORMAT_VERSION = 1
UNITS = "m"

TIMESTAMPS = "/timestamps"
CAMERAS = "/cameras"
ROBOT = "/robot"
EE_POSE = "/robot/ee_pose"
GRIPPER_WIDTH = "/robot/gripper_width"
MESH_VERTICES = "/robot/gripper_mesh/vertices"
MESH_FACES = "/robot/gripper_mesh/faces"
DEPTH_SCALE_ATTR = "depth_scale"

ROTATION_ATOL = 1e-4
CAMERA_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


def describe(value: Any) -> str:
    """A value as a user reads it: numpy scalars and arrays as plain Python (`0.0`, not `np.float64(0.0)`)."""
    return repr(value.tolist() if isinstance(value, np.generic | np.ndarray) else value)


def camera_field(camera: str, dataset: str = "") -> str:
    """The dataset path of a camera's dataset, e.g. `/cameras/front/K`."""
    return f"{CAMERAS}/{camera}/{dataset}" if dataset else f"{CAMERAS}/{camera}"


def check_dtype(path: Path, field: str, obj: Any, allowed: tuple[type, ...]) -> None:
    """Raise unless `obj.dtype` is one of `allowed`."""
    if not any(np.dtype(obj.dtype) == np.dtype(a) for a in allowed):
        names = " or ".join(np.dtype(a).name for a in allowed)
        raise SceneFormatError(path, field, f"dtype {np.dtype(obj.dtype).name}, expected {names}")


def check_shape(path: Path, field: str, shape: tuple[int, ...], expected: tuple[int | None, ...]) -> None:
    """Raise unless `shape` matches `expected`, where None matches any size."""
    ok = len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise SceneFormatError(path, field, f"shape {tuple(shape)}, expected {want}")


def check_frame_count(path: Path, field: str, count: int, num_frames: int) -> None:
    """Raise unless a dataset's leading dimension equals the number of timestamps."""
    if count != num_frames:
        raise SceneFormatError(path, field, f"has {count} frames, but /timestamps has {num_frames}")


def check_finite(path: Path, field: str, values: np.ndarray, what: str = "") -> None:
    """Raise if `values` holds NaN or inf; `what` prefixes the problem (e.g. `frame 3: `)."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise SceneFormatError(path, field, f"{what}{int(bad.sum())} NaN/inf values")


def check_timestamps(path: Path, timestamps: np.ndarray) -> None:
    """Timestamps: (T,) float64, T >= 1, finite, strictly increasing."""
    check_dtype(path, TIMESTAMPS, timestamps, (np.float64,))
    check_shape(path, TIMESTAMPS, timestamps.shape, (None,))
    if timestamps.shape[0] == 0:
        raise SceneFormatError(path, TIMESTAMPS, "is empty (a scene needs at least one frame)")
    check_finite(path, TIMESTAMPS, timestamps)
    steps = np.diff(timestamps)
    if (steps <= 0).any():
        first = int(np.argmax(steps <= 0))
        raise SceneFormatError(path, TIMESTAMPS, f"not strictly increasing at frame {first + 1}")


def check_intrinsics(path: Path, field: str, K: np.ndarray) -> None:
    """K: (3, 3) float64 pinhole matrix, finite, positive focal lengths, last row (0, 0, 1)."""
    check_dtype(path, field, K, (np.float64,))
    check_shape(path, field, K.shape, (3, 3))
    check_finite(path, field, K)
    for name, value in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if value <= 0:
            raise SceneFormatError(path, field, f"focal length {name} is {value:g}, expected > 0")
    if not np.array_equal(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
        raise SceneFormatError(path, field, f"not a pinhole matrix (rows 2-3 are {K[1:].tolist()})")


def check_rigid(path: Path, field: str, T: np.ndarray) -> None:
    """T: (N, 4, 4) finite rigid transforms (orthonormal rotation, det +1, last row 0 0 0 1)."""
    check_finite(path, field, T)
    bad_bottom = ~np.all(T[:, 3] == np.array([0.0, 0.0, 0.0, 1.0]), axis=1)
    if bad_bottom.any():
        frame = int(np.argmax(bad_bottom))
        raise SceneFormatError(path, field, f"frame {frame}: last row is {T[frame, 3].tolist()}, not 0 0 0 1")
    R = T[:, :3, :3]
    with np.errstate(over="ignore", invalid="ignore"):
        ortho_err = np.nan_to_num(np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)), nan=np.inf).max(axis=(1, 2))
    if (ortho_err >= ROTATION_ATOL).any():
        frame = int(np.argmax(ortho_err >= ROTATION_ATOL))
        err = float(ortho_err[frame])
        raise SceneFormatError(path, field, f"frame {frame}: rotation is not orthonormal (error {err:.3g})")
    det = np.linalg.det(R)
    if (det <= 0).any():
        frame = int(np.argmax(det <= 0))
        raise SceneFormatError(
            path, field, f"frame {frame}: rotation has determinant {det[frame]:.3g} (reflection)"
        )


def check_poses(path: Path, field: str, T: np.ndarray, num_frames: int) -> np.ndarray:
    """Check a static (4, 4) or moving (T, 4, 4) float64 pose dataset; return it as (T, 4, 4)."""
    check_dtype(path, field, T, (np.float64,))
    if T.ndim == 2:
        check_shape(path, field, T.shape, (4, 4))
        poses = np.broadcast_to(T, (num_frames, 4, 4))
        check_rigid(path, field, poses[:1])
        return poses.copy()
    check_shape(path, field, T.shape, (None, 4, 4))
    check_frame_count(path, field, T.shape[0], num_frames)
    check_rigid(path, field, T)
    return np.array(T)


def check_camera_name(path: Path, name: str) -> None:
    """Camera names become HDF5 group names and CLI arguments: letters, digits, `_`, `.`, `-`."""
    if not CAMERA_NAME_PATTERN.match(name):
        raise SceneFormatError(path, camera_field(name), "camera name must be letters, digits, '_', '.', '-'")


def check_depth_values(path: Path, field: str, depth_m: np.ndarray, what: str = "") -> None:
    """Depth in metres: finite and non-negative (0 = invalid)."""
    check_finite(path, field, depth_m, what)
    negative = depth_m < 0
    if negative.any():
        raise SceneFormatError(path, field, f"{what}{int(negative.sum())} negative depth values")


def check_depth_scale(path: Path, field: str, scale: Any) -> float:
    """The `depth_scale` attribute of uint16 depth: a positive finite number of metres per unit."""
    try:
        value = float(np.asarray(scale).item())
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise SceneFormatError(
            path, field, f"attribute {DEPTH_SCALE_ATTR} is {describe(scale)}, expected a number > 0"
        )
    return value


def check_gripper_width(path: Path, width: np.ndarray, num_frames: int) -> None:
    """Gripper opening: (T,) float32 metres, finite, non-negative."""
    check_dtype(path, GRIPPER_WIDTH, width, (np.float32,))
    check_shape(path, GRIPPER_WIDTH, width.shape, (None,))
    check_frame_count(path, GRIPPER_WIDTH, width.shape[0], num_frames)
    check_finite(path, GRIPPER_WIDTH, width)
    if (width < 0).any():
        raise SceneFormatError(path, GRIPPER_WIDTH, f"{int((width < 0).sum())} negative widths")


def check_mesh(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Gripper mesh: vertices (V, 3) float32 finite, faces (F, 3) int32 indexing the vertices."""
    check_dtype(path, MESH_VERTICES, vertices, (np.float32,))
    check_shape(path, MESH_VERTICES, vertices.shape, (None, 3))
    check_finite(path, MESH_VERTICES, vertices)
    check_dtype(path, MESH_FACES, faces, (np.int32,))
    check_shape(path, MESH_FACES, faces.shape, (None, 3))
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise SceneFormatError(
            path,
            MESH_FACES,
            f"indices span {faces.min()}..{faces.max()}, but there are {vertices.shape[0]} vertices",
        )

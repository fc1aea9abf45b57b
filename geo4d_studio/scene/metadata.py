"""Reading and validating a scene's metadata (everything but the pixels) from an open HDF5 file.

Only small datasets are read (timestamps, K, poses, robot arrays); pixel datasets are checked by
shape, dtype and attributes, never read. Problems are collected per dataset so that a report can
list them all; the reader raises the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import schema
from geo4d_studio.scene.camera import Camera

R = TypeVar("R")

# What h5py raises on a damaged file (bad heap/B-tree/datatype messages, failed filters) besides OSError.
H5_ERRORS: tuple[type[Exception], ...] = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@dataclass
class SceneMetadata:
    """What opening a scene reads: attributes, calibration, robot ground truth, pixel dataset layout."""

    fps: float
    task: str
    source: str
    timestamps: np.ndarray
    cameras: dict[str, Camera]
    depth_scales: dict[str, float | None]
    mask_cameras: frozenset[str]
    ee_pose: np.ndarray | None
    gripper_width: np.ndarray | None
    gripper_mesh: tuple[np.ndarray, np.ndarray] | None


@dataclass
class Findings:
    """Problems (the file is unusable) and warnings (it is usable, but something is missing)."""

    problems: list[SceneFormatError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def attempt(self, check: Callable[..., R], *args: Any) -> R | None:
        """Run `check`; record its SceneFormatError as a problem and return None instead."""
        try:
            return check(*args)
        except SceneFormatError as err:
            self.problems.append(err)
            return None


def dataset(h5: h5py.File, path: Path, name: str) -> h5py.Dataset:
    """The dataset `name` (its header readable), or a SceneFormatError saying it is missing or damaged."""
    try:
        obj = h5.get(name)
        if isinstance(obj, h5py.Dataset):
            obj.dtype, obj.shape, list(obj.attrs)  # noqa: B018 (decode the header now, inside the try)
    except H5_ERRORS as err:
        raise SceneFormatError(path, name, f"cannot be read (damaged HDF5 header: {err})") from err
    if not isinstance(obj, h5py.Dataset):
        raise SceneFormatError(path, name, "missing" if obj is None else "is a group, expected a dataset")
    return obj


def read_small(path: Path, ds: h5py.Dataset) -> np.ndarray:
    """Read a whole (small) dataset; a corrupt one becomes a SceneFormatError."""
    try:
        return np.asarray(ds[()])
    except H5_ERRORS as err:
        raise SceneFormatError(path, ds.name, f"cannot be read ({err})") from err


def _attr_text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _check_root(h5: h5py.File, path: Path) -> tuple[float, str, str]:
    attrs = h5.attrs
    if "format" not in attrs:
        raise SceneFormatError(path, "/", f"no 'format' attribute: not a {schema.FORMAT_NAME} file")
    if _attr_text(attrs["format"]) != schema.FORMAT_NAME:
        raise SceneFormatError(
            path, "/", f"format is {_attr_text(attrs['format'])!r}, expected {schema.FORMAT_NAME!r}"
        )
    version = attrs.get("version")
    if version is None or np.ndim(version) != 0 or not np.issubdtype(np.asarray(version).dtype, np.integer):
        raise SceneFormatError(path, "/", f"version is {schema.describe(version)}, expected an integer")
    if int(version) != schema.FORMAT_VERSION:
        raise SceneFormatError(
            path,
            "/",
            f"unsupported version {int(version)} (this build reads version {schema.FORMAT_VERSION})",
        )
    units = _attr_text(attrs.get("units", ""))
    if units != schema.UNITS:
        raise SceneFormatError(path, "/", f"units is {units!r}, expected {schema.UNITS!r}")
    try:
        fps = float(np.asarray(attrs.get("fps")).item())
    except (TypeError, ValueError):
        fps = float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise SceneFormatError(
            path, "/", f"fps is {schema.describe(attrs.get('fps'))}, expected a number > 0"
        )
    return fps, _attr_text(attrs.get("task", "")), _attr_text(attrs.get("source", ""))


def _read_timestamps(h5: h5py.File, path: Path) -> np.ndarray:
    ds = dataset(h5, path, schema.TIMESTAMPS)
    schema.check_dtype(path, schema.TIMESTAMPS, ds, (np.float64,))
    schema.check_shape(path, schema.TIMESTAMPS, ds.shape, (None,))
    timestamps = read_small(path, ds)
    schema.check_timestamps(path, timestamps)
    return timestamps


def _check_pixels(
    h5: h5py.File, path: Path, name: str, kind: str, dtypes: tuple[type, ...], num_frames: int
) -> h5py.Dataset:
    """Check a pixel dataset's dtype and shape (T, H, W[, 3]) without reading it."""
    field_name = schema.camera_field(name, kind)
    ds = dataset(h5, path, field_name)
    schema.check_dtype(path, field_name, ds, dtypes)
    schema.check_shape(
        path, field_name, ds.shape, (None, None, None, 3) if kind == "rgb" else (None, None, None)
    )
    schema.check_frame_count(path, field_name, ds.shape[0], num_frames)
    if 0 in ds.shape[1:3]:
        raise SceneFormatError(path, field_name, f"empty images of shape {ds.shape[1:3]}")
    return ds


def _check_same_size(path: Path, ds: h5py.Dataset, size: tuple[int, int]) -> None:
    if tuple(ds.shape[1:3]) != size:
        raise SceneFormatError(path, ds.name, f"images are {ds.shape[1:3]}, but rgb images are {size}")


def _depth_scale(path: Path, ds: h5py.Dataset) -> float | None:
    if ds.dtype == np.uint16:
        if schema.DEPTH_SCALE_ATTR not in ds.attrs:
            raise SceneFormatError(
                path, ds.name, f"uint16 depth needs the attribute {schema.DEPTH_SCALE_ATTR}"
            )
        return schema.check_depth_scale(path, ds.name, ds.attrs[schema.DEPTH_SCALE_ATTR])
    if schema.DEPTH_SCALE_ATTR in ds.attrs:
        raise SceneFormatError(
            path, ds.name, f"attribute {schema.DEPTH_SCALE_ATTR} is only allowed on uint16 depth"
        )
    return None


def _read_camera(
    h5: h5py.File, path: Path, name: str, num_frames: int, found: Findings
) -> tuple[Camera, float | None, bool] | None:
    """One camera's calibration and pixel layout; problems go to `found`, None if any."""
    before = len(found.problems)
    found.attempt(schema.check_camera_name, path, name)
    K = found.attempt(_read_intrinsics, h5, path, name)
    poses = found.attempt(_read_poses, h5, path, name, num_frames)
    rgb = found.attempt(_check_pixels, h5, path, name, "rgb", (np.uint8,), num_frames)
    depth = found.attempt(_check_pixels, h5, path, name, "depth", (np.float32, np.uint16), num_frames)
    size = tuple(rgb.shape[1:3]) if rgb is not None else None
    scale = None
    if depth is not None:
        scale = found.attempt(_depth_scale, path, depth)
        if size is not None:
            found.attempt(_check_same_size, path, depth, size)
    has_mask = schema.camera_field(name, "gripper_mask") in h5
    if has_mask:
        mask = found.attempt(_check_pixels, h5, path, name, "gripper_mask", (np.uint8, np.bool_), num_frames)
        if mask is not None and size is not None:
            found.attempt(_check_same_size, path, mask, size)
    else:
        found.warnings.append(f"camera {name}: no gripper mask")
    if len(found.problems) > before:
        return None
    for array in (K, poses):
        array.flags.writeable = False
    camera = Camera(name=name, K=K, T_world_cam=poses, width=int(size[1]), height=int(size[0]))
    return camera, scale, has_mask


def _read_intrinsics(h5: h5py.File, path: Path, name: str) -> np.ndarray:
    field_name = schema.camera_field(name, "K")
    ds = dataset(h5, path, field_name)
    schema.check_dtype(path, field_name, ds, (np.float64,))
    schema.check_shape(path, field_name, ds.shape, (3, 3))
    K = read_small(path, ds)
    schema.check_intrinsics(path, field_name, K)
    return K


def _read_poses(h5: h5py.File, path: Path, name: str, num_frames: int) -> np.ndarray:
    field_name = schema.camera_field(name, "T_world_cam")
    ds = dataset(h5, path, field_name)
    schema.check_dtype(path, field_name, ds, (np.float64,))
    return schema.check_poses(path, field_name, read_small(path, ds), num_frames)


def _read_ee_pose(h5: h5py.File, path: Path, num_frames: int) -> np.ndarray:
    ds = dataset(h5, path, schema.EE_POSE)
    schema.check_dtype(path, schema.EE_POSE, ds, (np.float64,))
    schema.check_shape(path, schema.EE_POSE, ds.shape, (None, 4, 4))
    schema.check_frame_count(path, schema.EE_POSE, ds.shape[0], num_frames)
    poses = read_small(path, ds)
    schema.check_rigid(path, schema.EE_POSE, poses)
    return poses


def _read_gripper_width(h5: h5py.File, path: Path, num_frames: int) -> np.ndarray:
    ds = dataset(h5, path, schema.GRIPPER_WIDTH)
    schema.check_dtype(path, schema.GRIPPER_WIDTH, ds, (np.float32,))
    schema.check_shape(path, schema.GRIPPER_WIDTH, ds.shape, (None,))
    width = read_small(path, ds)
    schema.check_gripper_width(path, width, num_frames)
    return width


def _read_mesh(h5: h5py.File, path: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices_ds = dataset(h5, path, schema.MESH_VERTICES)
    faces_ds = dataset(h5, path, schema.MESH_FACES)
    schema.check_dtype(path, schema.MESH_VERTICES, vertices_ds, (np.float32,))
    schema.check_dtype(path, schema.MESH_FACES, faces_ds, (np.int32,))
    vertices, faces = read_small(path, vertices_ds), read_small(path, faces_ds)
    schema.check_mesh(path, vertices, faces)
    return vertices, faces


def _read_robot(h5: h5py.File, path: Path, num_frames: int, found: Findings) -> dict[str, Any]:
    robot: dict[str, Any] = {"ee_pose": None, "gripper_width": None, "gripper_mesh": None}
    if schema.EE_POSE in h5:
        robot["ee_pose"] = found.attempt(_read_ee_pose, h5, path, num_frames)
    else:
        found.warnings.append("no robot ground truth (/robot/ee_pose)")
    if schema.GRIPPER_WIDTH in h5:
        robot["gripper_width"] = found.attempt(_read_gripper_width, h5, path, num_frames)
    else:
        found.warnings.append("no gripper width ground truth (/robot/gripper_width)")
    if schema.MESH_VERTICES in h5 or schema.MESH_FACES in h5:
        robot["gripper_mesh"] = found.attempt(_read_mesh, h5, path)
    else:
        found.warnings.append("no gripper mesh (/robot/gripper_mesh)")
    return robot


def _check_fps(fps: float, timestamps: np.ndarray, found: Findings) -> None:
    if timestamps.shape[0] > 1:
        step = float(np.median(np.diff(timestamps)))
        if abs(step * fps - 1.0) > 0.1:
            found.warnings.append(f"fps is {fps:g}, but timestamps are {1.0 / step:.3g} frames per second")


def read_metadata(h5: h5py.File, path: Path) -> tuple[SceneMetadata | None, Findings]:
    """Validate and read everything but the pixels; metadata is None when there are problems."""
    try:
        return _read_metadata(h5, path)
    except H5_ERRORS as err:  # damage outside any one dataset: group tables, attribute heaps
        found = Findings(problems=[SceneFormatError(path, "file", f"damaged HDF5 structure ({err})")])
        return None, found


def _read_metadata(h5: h5py.File, path: Path) -> tuple[SceneMetadata | None, Findings]:
    found = Findings()
    root = found.attempt(_check_root, h5, path)
    timestamps = found.attempt(_read_timestamps, h5, path)
    if root is None or timestamps is None:
        return None, found
    fps, task, source = root
    _check_fps(fps, timestamps, found)
    num_frames = timestamps.shape[0]
    group = h5.get(schema.CAMERAS)
    if not isinstance(group, h5py.Group) or len(group) == 0:
        found.problems.append(
            SceneFormatError(path, schema.CAMERAS, "missing or empty (a scene needs a camera)")
        )
        return None, found
    cameras = [_read_camera(h5, path, name, num_frames, found) for name in group]
    robot = _read_robot(h5, path, num_frames, found)
    if found.problems:
        return None, found
    for array in (timestamps, robot["ee_pose"], robot["gripper_width"], *(robot["gripper_mesh"] or ())):
        if array is not None:
            array.flags.writeable = False
    metadata = SceneMetadata(
        fps=fps,
        task=task,
        source=source,
        timestamps=timestamps,
        cameras={cam.name: cam for cam, _, _ in cameras},
        depth_scales={cam.name: scale for cam, scale, _ in cameras},
        mask_cameras=frozenset(cam.name for cam, _, has_mask in cameras if has_mask),
        **robot,
    )
    return metadata, found

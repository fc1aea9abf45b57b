"""Import one robomimic demo (HDF5 `data/<demo>/obs/<camera>_image`, `<camera>_depth`) as a scene.

robomimic stores images and depth but not the camera calibration, so a calibration file is required
(see `calibration.py`): robosuite's `get_camera_intrinsic_matrix` / `get_camera_extrinsic_matrix`
give `K` and an OpenCV-axes `T_world_cam`; robosuite's depth observations are OpenGL depth-buffer
values, so give `"depth_encoding": "zbuffer"` with the `near`/`far` of the MuJoCo model
(`model.vis.map.znear/zfar × model.stat.extent`). Files recorded with robosuite's default
`IMAGE_CONVENTION = "opengl"` are upside down: pass `flip_vertical=True`.
Robot ground truth comes from `robot0_eef_pos`, `robot0_eef_quat` (x, y, z, w) and
`robot0_gripper_qpos` (width = left − right finger joint) when present.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.geometry.se3 import from_quat_xyzw
from geo4d_studio.scene.importers.calibration import CameraCalibration, load_calibration, require_camera
from geo4d_studio.scene.metadata import H5_ERRORS
from geo4d_studio.scene.writer import SceneWriter

IMAGE_SUFFIX = "_image"
DEPTH_SUFFIX = "_depth"
DEFAULT_FPS = 20.0  # robosuite's default control frequency


def _demo_obs(h5: h5py.File, src: Path, demo: str) -> h5py.Group:
    data = h5.get("data")
    if not isinstance(data, h5py.Group):
        raise SceneFormatError(src, "/data", "missing: not a robomimic dataset")
    if demo not in data:
        have = ", ".join(sorted(data)[:10]) or "none"
        raise SceneFormatError(src, f"/data/{demo}", f"no such demo (have: {have})")
    obs = data[demo].get("obs")
    if not isinstance(obs, h5py.Group):
        raise SceneFormatError(src, f"/data/{demo}/obs", "missing")
    return obs


def _frames(
    src: Path, ds: h5py.Dataset, flip: bool, decode: Callable[[np.ndarray], np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    for t in range(ds.shape[0]):
        try:
            frame = ds[t]
        except H5_ERRORS as err:
            raise SceneFormatError(src, ds.name, f"frame {t}: cannot be read ({err})") from err
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[..., 0]
        if flip:
            frame = frame[::-1]
        yield frame if decode is None else decode(frame)


def _env_name(data: h5py.Group) -> str:
    """The robosuite environment name from robomimic's `env_args` JSON attribute, if any."""
    try:
        return str(json.loads(data.attrs["env_args"])["env_name"])
    except (KeyError, TypeError, ValueError):
        return ""


def _robot(src: Path, obs: h5py.Group) -> tuple[np.ndarray, np.ndarray] | None:
    names = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
    if not all(name in obs for name in names):
        return None
    pos, quat, qpos = (np.asarray(obs[name][()], dtype=np.float64) for name in names)
    try:
        ee_pose = from_quat_xyzw(pos, quat)
    except ValueError as err:
        raise SceneFormatError(src, f"{obs.name}/robot0_eef_quat", f"not unit quaternions ({err})") from err
    return ee_pose, qpos[:, 0] - qpos[:, 1]


def import_robomimic(
    src: str | Path,
    out: str | Path,
    *,
    calibration: str | Path | None = None,
    demo: str = "demo_0",
    cameras: list[str] | None = None,
    fps: float | None = None,
    flip_vertical: bool = False,
    depth_scale: float | None = 1e-4,
    overwrite: bool = False,
) -> Path:
    """Write demo `demo` of robomimic file `src` as a scene at `out`; returns `out`."""
    src = Path(src)
    calib_path = None if calibration is None else Path(calibration)
    calib, extras = load_calibration(calib_path) if calib_path is not None else ({}, {})
    try:
        h5 = h5py.File(src, "r")
    except OSError as err:
        raise SceneFormatError(src, "file", "not a readable HDF5 file") from err
    with h5:
        obs = _demo_obs(h5, src, demo)
        found = sorted(key[: -len(IMAGE_SUFFIX)] for key in obs if key.endswith(IMAGE_SUFFIX))
        names = cameras or found
        if not names:
            raise SceneFormatError(src, obs.name, f"no <camera>{IMAGE_SUFFIX} datasets")
        for name in names:
            for suffix in (IMAGE_SUFFIX, DEPTH_SUFFIX):
                if f"{name}{suffix}" not in obs:
                    raise SceneFormatError(
                        src, f"{obs.name}/{name}{suffix}", f"missing (cameras: {', '.join(found)})"
                    )
        num_frames = obs[f"{names[0]}{IMAGE_SUFFIX}"].shape[0]
        rate = float(fps or extras.get("fps", DEFAULT_FPS))
        cams: dict[str, CameraCalibration] = {name: require_camera(calib, calib_path, name) for name in names}
        with SceneWriter(
            out,
            fps=rate,
            timestamps=np.arange(num_frames) / rate,
            task=_env_name(h5["data"]),
            source=f"robomimic {src.name} /data/{demo}",
            overwrite=overwrite,
            depth_scale=depth_scale,
        ) as writer:
            for name, cam in cams.items():
                depth_ds = obs[f"{name}{DEPTH_SUFFIX}"]

                def decode(
                    depth: np.ndarray, cam: CameraCalibration = cam, field: str = depth_ds.name
                ) -> np.ndarray:
                    return cam.depth_to_metres(depth, src, field)

                writer.add_camera(
                    name,
                    cam.K,
                    cam.T_world_cam,
                    _frames(src, obs[f"{name}{IMAGE_SUFFIX}"], flip_vertical),
                    _frames(src, depth_ds, flip_vertical, decode),
                )
            robot = _robot(src, obs)
            if robot is not None:
                writer.set_robot(*robot)
    return Path(out)

"""Import one RLBench episode folder (`<camera>_rgb/<N>.png`, `<camera>_depth/<N>.png`) as a scene.

RLBench keeps calibration, depth ranges and the gripper state in `low_dim_obs.pkl`, a pickle this
app does not open. Export them once with RLBench installed, to `calibration.json` in the episode
folder (layout in `calibration.py`)::

    obs = pickle.load(open("low_dim_obs.pkl", "rb"))
    cams = {c: {"K": obs[0].misc[f"{c}_camera_intrinsics"].tolist(),
                "T_world_cam": [o.misc[f"{c}_camera_extrinsics"].tolist() for o in obs],
                "near": obs[0].misc[f"{c}_camera_near"], "far": obs[0].misc[f"{c}_camera_far"]}
            for c in ("front", "left_shoulder", "right_shoulder", "overhead", "wrist")}
    json.dump({"fps": 20, "cameras": cams,
               "gripper_pose": [o.gripper_pose.tolist() for o in obs],
               "gripper_joint_positions": [o.gripper_joint_positions.tolist() for o in obs]},
              open("calibration.json", "w"))

Depth PNGs use RLBench's encoding: 24-bit integers in R, G, B (R most significant) divided by
2**24 − 1 give depth normalised linearly between the camera's near and far planes. PyRep's
intrinsics have negative focal lengths; `calibration.py` converts them to OpenCV axes.
`gripper_pose` is x, y, z, qx, qy, qz, qw of the tool tip; the opening is the sum of both finger joints.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.geometry.se3 import from_quat_xyzw
from geo4d_studio.scene.importers.calibration import CameraCalibration, load_calibration, require_camera
from geo4d_studio.scene.writer import SceneWriter

DEPTH_PNG_SCALE = 2**24 - 1
DEFAULT_CALIBRATION = "calibration.json"
DEFAULT_FPS = 20.0  # RLBench steps its simulation at 0.05 s


def decode_depth_png(rgb: np.ndarray) -> np.ndarray:
    """RLBench depth PNG (H, W, 3) uint8 → depth normalised to [0, 1] (float32)."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]) / DEPTH_PNG_SCALE).astype(np.float32)


def _numbered_pngs(folder: Path) -> dict[int, Path]:
    return {int(p.stem): p for p in folder.glob("*.png") if p.stem.isdigit()}


def _read_png(path: Path) -> np.ndarray:
    try:
        image = iio.imread(path)
    except (OSError, ValueError) as err:
        raise SceneFormatError(path, "file", f"not a readable PNG ({err})") from err
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise SceneFormatError(path, "file", f"image {image.dtype} {image.shape}, expected uint8 (H, W, 3)")
    return image[..., :3]


def _depth_frames(paths: list[Path], cam: CameraCalibration) -> Iterator[np.ndarray]:
    for path in paths:
        yield cam.depth_to_metres(decode_depth_png(_read_png(path)), path, "depth")


def _robot(calib_path: Path, extras: dict[str, Any], num_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    if "gripper_pose" not in extras or "gripper_joint_positions" not in extras:
        return None
    pose = np.asarray(extras["gripper_pose"], dtype=np.float64)
    joints = np.asarray(extras["gripper_joint_positions"], dtype=np.float64)
    if pose.shape != (num_frames, 7):
        raise SceneFormatError(calib_path, "gripper_pose", f"shape {pose.shape}, expected ({num_frames}, 7)")
    if joints.ndim != 2 or joints.shape[0] != num_frames:
        raise SceneFormatError(
            calib_path, "gripper_joint_positions", f"shape {joints.shape}, expected ({num_frames}, 2)"
        )
    try:
        ee_pose = from_quat_xyzw(pose[:, :3], pose[:, 3:])
    except ValueError as err:
        raise SceneFormatError(calib_path, "gripper_pose", f"not unit quaternions ({err})") from err
    return ee_pose, joints.sum(axis=1)


def import_rlbench(
    episode_dir: str | Path,
    out: str | Path,
    *,
    calibration: str | Path | None = None,
    cameras: list[str] | None = None,
    fps: float | None = None,
    depth_scale: float | None = 1e-4,
    overwrite: bool = False,
) -> Path:
    """Write RLBench episode folder `episode_dir` as a scene at `out`; returns `out`.

    `calibration` defaults to `<episode_dir>/calibration.json`; depth defaults to RLBench's linear
    near/far encoding.
    """
    episode_dir = Path(episode_dir)
    if not episode_dir.is_dir():
        raise SceneFormatError(
            episode_dir, "folder", "not an RLBench episode folder (expected <camera>_rgb/)"
        )
    calib_path = Path(calibration) if calibration is not None else episode_dir / DEFAULT_CALIBRATION
    calib, extras = load_calibration(calib_path)
    found = sorted(p.name[: -len("_rgb")] for p in episode_dir.glob("*_rgb") if p.is_dir())
    names = cameras or found
    if not names:
        raise SceneFormatError(episode_dir, "folder", "no <camera>_rgb folders")
    cams = {name: require_camera(calib, calib_path, name) for name in names}
    frames: dict[str, tuple[list[Path], list[Path]]] = {}
    for name in names:
        rgb, depth = (
            _numbered_pngs(episode_dir / f"{name}_rgb"),
            _numbered_pngs(episode_dir / f"{name}_depth"),
        )
        if not rgb:
            raise SceneFormatError(
                episode_dir, f"{name}_rgb", f"no numbered PNGs (cameras: {', '.join(found)})"
            )
        if sorted(rgb) != list(range(len(rgb))):
            raise SceneFormatError(episode_dir, f"{name}_rgb", f"frames are not numbered 0..{len(rgb) - 1}")
        if sorted(depth) != sorted(rgb):
            missing = sorted(set(rgb) - set(depth))[:5]
            raise SceneFormatError(
                episode_dir, f"{name}_depth", f"frames do not match {name}_rgb (missing {missing})"
            )
        frames[name] = ([rgb[i] for i in sorted(rgb)], [depth[i] for i in sorted(rgb)])
    num_frames = len(frames[names[0]][0])
    rate = float(fps or extras.get("fps", DEFAULT_FPS))
    with SceneWriter(
        out,
        fps=rate,
        timestamps=np.arange(num_frames) / rate,
        task=str(extras.get("task", "")),
        source=f"RLBench {episode_dir.name}",
        overwrite=overwrite,
        depth_scale=depth_scale,
    ) as writer:
        for name, cam in cams.items():
            if cam.depth_encoding is None:
                cam = replace(cam, depth_encoding="linear")
            rgb_paths, depth_paths = frames[name]
            writer.add_camera(
                name,
                cam.K,
                cam.T_world_cam,
                (_read_png(p) for p in rgb_paths),
                _depth_frames(depth_paths, cam),
            )
        robot = _robot(calib_path, extras, num_frames)
        if robot is not None:
            writer.set_robot(*robot)
    return Path(out)

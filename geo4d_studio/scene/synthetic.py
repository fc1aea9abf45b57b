"""Small synthetic recordings (no simulator): a textured floor and a moving box seen by cameras on a ring.

For tests, benchmarks and demos that need a valid `geo4d-scene` file quickly. The depth is exact
for the drawn geometry (floor plane z = 0, box top at `BOX_HEIGHT_M`), images compress like real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geo4d_studio.scene.writer import SceneWriter

BOX_HEIGHT_M = 0.1
RING_RADIUS_M = 1.0
CAMERA_HEIGHT_M = 0.8


def ring_pose(angle: float) -> np.ndarray:
    """OpenCV `T_world_cam` of a camera on the ring at `angle`, looking at the world origin."""
    eye = np.array([RING_RADIUS_M * np.cos(angle), RING_RADIUS_M * np.sin(angle), CAMERA_HEIGHT_M])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = eye
    return pose


def intrinsics(height: int, width: int) -> np.ndarray:
    """A pinhole K with a 60° horizontal field of view."""
    f = 0.5 * width / np.tan(np.radians(30.0))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def render_frame(
    K: np.ndarray, pose: np.ndarray, box_xy: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the floor (z = 0) and the top of a 0.2 m wide box at `box_xy`: (rgb uint8, depth m)."""
    v, u = np.mgrid[0:h, 0:w]
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((h, w))], axis=-1)
    rays = rays_cam @ pose[:3, :3].T
    origin = pose[:3, 3]
    depth = np.zeros((h, w))
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    for plane_z, color in ((0.0, None), (BOX_HEIGHT_M, (200, 60, 40))):
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (plane_z - origin[2]) / rays[..., 2]
        hit = origin[:2] + z[..., None] * rays[..., :2]
        valid = z > 0
        if color is None:
            checker = (np.floor(hit[..., 0] * 10) + np.floor(hit[..., 1] * 10)) % 2
            floor = np.stack([90 + 60 * checker, 90 + 60 * checker, 80 + 40 * checker], axis=-1)
            rgb[valid] = floor[valid].astype(np.uint8)
        else:
            valid &= np.all(np.abs(hit - box_xy) < 0.1, axis=-1)
            rgb[valid] = color
        depth[valid] = z[valid]  # z along the ray with rays_cam z = 1 is the camera-frame depth
    return rgb, depth.astype(np.float32)


def make_synthetic_scene(
    path: str | Path,
    *,
    cameras: int = 2,
    frames: int = 5,
    size: tuple[int, int] = (24, 32),
    fps: float = 10.0,
    depth_scale: float | None = None,
    depth_noise_m: float = 0.0,
    seed: int = 0,
    with_robot: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a valid recording of a box sliding across a checkered floor; returns its path.

    `depth_noise_m` adds Gaussian sensor-like noise to valid depth (real files compress like that).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    K = intrinsics(h, w)
    timestamps = np.arange(frames) / fps
    box_xy = np.stack([np.linspace(-0.2, 0.2, frames), np.zeros(frames)], axis=-1)
    with SceneWriter(
        path,
        fps=fps,
        timestamps=timestamps,
        task="synthetic box",
        source="synthetic",
        overwrite=overwrite,
        depth_scale=depth_scale,
    ) as writer:
        for index in range(cameras):
            pose = ring_pose(2 * np.pi * index / cameras)
            views = [render_frame(K, pose, xy, h, w) for xy in box_xy]
            if depth_noise_m > 0:
                for _, depth in views:
                    depth += (depth > 0) * rng.normal(0.0, depth_noise_m, depth.shape).astype(np.float32)
            masks = [np.all(rgb == (200, 60, 40), axis=-1) for rgb, _ in views]
            writer.add_camera(
                f"cam{index}", K, pose, [rgb for rgb, _ in views], [d for _, d in views], gripper_mask=masks
            )
        if with_robot:
            ee_pose = np.tile(np.eye(4), (frames, 1, 1))
            ee_pose[:, :2, 3] = box_xy
            ee_pose[:, 2, 3] = BOX_HEIGHT_M + 0.05
            vertices = np.array([[0, 0, 0], [0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02]], dtype=np.float32)
            faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], dtype=np.int32)
            writer.set_robot(ee_pose, np.full(frames, 0.04), vertices, faces)
    return Path(path)

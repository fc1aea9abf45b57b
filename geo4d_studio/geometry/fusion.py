"""Fuse RGB-D views into one coloured world point cloud, with optional voxel downsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry.camera import pixel_rays

if TYPE_CHECKING:
    from geo4d_studio.scene import Scene

View = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(rgb (H, W, 3) uint8, depth (H, W) float32 m, K (3, 3), T_world_cam (4, 4))."""


def _view_points(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray):
    """World points (N, 3) float32 and colours (N, 3) uint8 of the valid-depth pixels of one view."""
    depth = np.asarray(depth, dtype=np.float32)
    T = np.asarray(T_world_cam, dtype=np.float32)
    valid = depth > 0
    rays = pixel_rays(K, *depth.shape)[valid]
    points = (depth[valid][:, None] * rays) @ T[:3, :3].T + T[:3, 3]
    return points, np.asarray(rgb, dtype=np.uint8)[valid]


def voxel_downsample(
    points: np.ndarray, colors: np.ndarray, voxel_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """One point per occupied voxel of edge `voxel_m`: the mean position and mean colour of its points."""
    if voxel_m <= 0:
        raise ValueError(f"voxel size must be > 0, got {voxel_m}")
    if len(points) == 0:
        return points.astype(np.float32), colors.astype(np.uint8)
    cells = np.floor(points / voxel_m).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    keys = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    columns = np.concatenate([points, colors], axis=1, dtype=np.float64).T
    means = np.stack([np.bincount(inverse, weights=c, minlength=len(counts)) for c in columns], axis=1)
    means /= counts[:, None]
    return means[:, :3].astype(np.float32), np.rint(means[:, 3:]).astype(np.uint8)


def fuse_views(views: Sequence[View], voxel_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) float32 and colours (N, 3) uint8 of all valid pixels of `views`.

    Each view is `(rgb, depth, K, T_world_cam)`; with `voxel_m` the cloud is voxel-downsampled.
    """
    parts = [_view_points(*view) for view in views]
    if parts:
        points = np.concatenate([p for p, _ in parts])
        colors = np.concatenate([c for _, c in parts])
    else:
        points, colors = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    if voxel_m is not None:
        points, colors = voxel_downsample(points, colors, voxel_m)
    return points, colors


def fuse_frame(
    scene: Scene, t: int, cameras: Sequence[str] | None = None, voxel_m: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fused world cloud of frame `t` of a recording from `cameras` (default: all, in file order).

    Raises Geo4DError naming the file when `t` is out of range or a camera does not exist.
    """
    if not 0 <= t < scene.num_frames:
        raise Geo4DError(
            f"{scene.path}: frame {t} is out of range: the recording has {scene.num_frames} frames "
            f"(0..{scene.num_frames - 1})"
        )
    names = list(scene.camera_names if cameras is None else cameras)
    unknown = [name for name in names if name not in scene.cameras]
    if unknown:
        raise Geo4DError(
            f"{scene.path}: no camera named {', '.join(unknown)} (cameras: {', '.join(scene.camera_names)})"
        )
    views = [
        (scene.rgb(name, t), scene.depth(name, t), scene.cameras[name].K, scene.cameras[name].pose(t))
        for name in names
    ]
    return fuse_views(views, voxel_m=voxel_m)

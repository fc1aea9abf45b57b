"""How well an observed depth image supports a posed gripper model (the tracker's confidence term)."""

from __future__ import annotations

import numpy as np


def render_point_depth(points_cam: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Z-buffer of camera-frame points: (H, W) float64 nearest depth per pixel, 0 where nothing lands."""
    z = points_cam[:, 2]
    front = z > 1e-6
    pts, z = points_cam[front], z[front]
    u = np.rint(K[0, 0] * pts[:, 0] / z + K[0, 2]).astype(np.int64)
    v = np.rint(K[1, 1] * pts[:, 1] / z + K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    idx, z = v[inside] * width + u[inside], z[inside]
    order = np.lexsort((z, idx))
    first = np.unique(idx[order], return_index=True)[1]
    depth = np.zeros(height * width)
    depth[idx[order][first]] = z[order][first]
    return depth.reshape(height, width)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` whose four neighbours are in `mask` too (drops the silhouette border)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[0, :] = inner[-1, :] = inner[:, 0] = inner[:, -1] = False
    return inner


def depth_support(
    model_depth: np.ndarray, observed_depth: np.ndarray, tol_m: float = 0.01
) -> tuple[float, int]:
    """Fraction of the model's (interior) pixels where the observation agrees within `tol_m`.

    Pixels where the observation is in front of the model by more than `tol_m` are occluded and not
    counted; pixels where it is behind the model or invalid (0) count against. Returns (support, the
    number of pixels counted); (0, 0) when no model pixel is visible.
    """
    drawn = model_depth > 0
    inner = _interior(drawn)
    pixels = inner if inner.sum() >= 10 else drawn
    model_z, obs_z = model_depth[pixels], observed_depth[pixels]
    occluded = (obs_z > 0) & (obs_z < model_z - tol_m)
    counted = int((~occluded).sum())
    if counted == 0:
        return 0.0, 0
    agree = (obs_z > 0) & (np.abs(obs_z - model_z) <= tol_m)
    return float(agree.sum() / counted), counted

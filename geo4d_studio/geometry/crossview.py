"""Cross-view supervision: move view m's pointmap into view n's camera frame (DESIGN.md §4)."""

from __future__ import annotations

import numpy as np

from geo4d_studio.geometry.se3 import compose, invert, transform_points


def pointmap_to_frame(
    pointmap_m: np.ndarray, T_world_cam_m: np.ndarray, T_world_cam_n: np.ndarray
) -> np.ndarray:
    """View m's pointmap (..., H, W, 3), in m's camera frame, expressed in view n's camera frame.

    Applies `T_n_m = inv(T_world_cam_n) @ T_world_cam_m` to valid pixels; all-zero (invalid) pixels
    stay zero. Poses are (4, 4) or batched (B, 4, 4) matching a pointmap batch (B, H, W, 3).
    Returns float32.
    """
    pointmap_m = np.asarray(pointmap_m, dtype=np.float32)
    T_n_m = compose(invert(T_world_cam_n), T_world_cam_m)
    if T_n_m.ndim > 2:
        T_n_m = T_n_m[..., None, None, :, :]
    moved = transform_points(T_n_m, pointmap_m)
    valid = np.any(pointmap_m != 0, axis=-1, keepdims=True)
    return np.where(valid, moved, np.float32(0.0)).astype(np.float32, copy=False)

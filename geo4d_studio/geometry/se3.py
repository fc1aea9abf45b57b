"""Rigid transforms as (..., 4, 4) homogeneous matrices; `T_a_b` maps frame-b coordinates to frame a.

Every function accepts batches: leading dimensions broadcast like numpy. Quaternions are x, y, z, w.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

_BOTTOM_ROW = np.array([0.0, 0.0, 0.0, 1.0])


def _assemble(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Stack rotations (..., 3, 3) and translations (..., 3) into (..., 4, 4) transforms."""
    shape = np.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    T = np.zeros((*shape, 4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (..., 4, 4): `inv(T_a_b) = T_b_a`, using R^T (no general inverse)."""
    T = np.asarray(T, dtype=np.float64)
    R_inv = np.swapaxes(T[..., :3, :3], -1, -2)
    t_inv = -np.einsum("...ij,...j->...i", R_inv, T[..., :3, 3])
    return _assemble(R_inv, t_inv)


def compose(*Ts: np.ndarray) -> np.ndarray:
    """Product left to right: `compose(T_a_b, T_b_c) = T_a_c`; batch dimensions broadcast."""
    if not Ts:
        raise ValueError("compose needs at least one transform")
    out = np.asarray(Ts[0], dtype=np.float64)
    for T in Ts[1:]:
        out = out @ np.asarray(T, dtype=np.float64)
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply `T` (..., 4, 4) to `points` (..., 3); batch dims of T broadcast against points[..., :-1].

    A single (4, 4) transform applies to points of any shape, e.g. (N, 3) or an (H, W, 3) pointmap.
    The result keeps the floating dtype of `points` (float32 stays float32).
    """
    T = np.asarray(T)
    points = np.asarray(points)
    dtype = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64
    R = T[..., :3, :3].astype(dtype, copy=False)
    t = T[..., :3, 3].astype(dtype, copy=False)
    if T.ndim == 2:
        return points.astype(dtype, copy=False) @ R.T + t
    return np.einsum("...ij,...j->...i", R, points.astype(dtype, copy=False)) + t


def interpolate(T0: np.ndarray, T1: np.ndarray, s: float | np.ndarray) -> np.ndarray:
    """Pose between `T0` (s=0) and `T1` (s=1): slerp of the rotation, linear translation.

    `T0`, `T1` are single (4, 4) poses; `s` is a scalar (returns (4, 4)) or an array (returns
    (*s.shape, 4, 4)). The rotation takes the shortest arc; `s` outside [0, 1] extrapolates.
    """
    T0 = np.asarray(T0, dtype=np.float64)
    T1 = np.asarray(T1, dtype=np.float64)
    s_arr = np.asarray(s, dtype=np.float64)
    r0 = Rotation.from_matrix(T0[:3, :3])
    delta = (r0.inv() * Rotation.from_matrix(T1[:3, :3])).as_rotvec()
    steps = Rotation.from_rotvec(s_arr.reshape(-1, 1) * delta)
    R = (r0 * steps).as_matrix().reshape(*s_arr.shape, 3, 3)
    t = T0[:3, 3] + s_arr[..., None] * (T1[:3, 3] - T0[:3, 3])
    return _assemble(R, t)


def is_rigid(T: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Per matrix of `T` (..., 4, 4): finite, orthonormal rotation with det +1, bottom row [0, 0, 0, 1].

    Returns a bool array of the batch shape (a numpy bool for a single matrix).
    """
    T = np.asarray(T, dtype=np.float64)
    finite = np.isfinite(T).all(axis=(-1, -2))
    T = np.where(np.isfinite(T), T, 0.0)
    R = T[..., :3, :3]
    orthonormal = np.isclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=atol).all(axis=(-1, -2))
    proper = np.isclose(np.linalg.det(R), 1.0, atol=atol)
    bottom = np.isclose(T[..., 3, :], _BOTTOM_ROW, atol=atol).all(axis=-1)
    return finite & orthonormal & proper & bottom


def from_quat_xyzw(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Transforms (..., 4, 4) from translations (..., 3) and quaternions x, y, z, w (..., 4).

    Quaternions are normalised; a zero quaternion raises ValueError.
    """
    t = np.asarray(t, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    R = Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(*q.shape[:-1], 3, 3)
    return _assemble(R, t)


def to_quat_xyzw(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translations (..., 3) and unit quaternions x, y, z, w (..., 4) with w >= 0 of transforms T."""
    T = np.asarray(T, dtype=np.float64)
    q = Rotation.from_matrix(T[..., :3, :3].reshape(-1, 3, 3)).as_quat(canonical=True)
    return T[..., :3, 3].copy(), q.reshape(*T.shape[:-2], 4)


def look_at(
    eye: np.ndarray, target: np.ndarray, up: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """OpenCV `T_world_cam` at `eye` looking at `target`: z forward, x right, y down (toward -up).

    Inputs are (..., 3) and broadcast. Raises ValueError when eye == target or the view direction
    is parallel to `up`.
    """
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    up = np.asarray(up, dtype=np.float64)
    norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise ValueError("look_at: eye and target coincide")
    z = forward / norm
    x = np.cross(z, up)
    x_norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(x_norm < 1e-9):
        raise ValueError("look_at: viewing direction is parallel to up")
    x = x / x_norm
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=-1)
    return _assemble(R, np.broadcast_to(eye, R.shape[:-1]))

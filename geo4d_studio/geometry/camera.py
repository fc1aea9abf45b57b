"""Pinhole cameras (OpenCV axes: x right, y down, z forward): rays, depth <-> pointmap, projection.

Pixel (u, v) = (column, row) has its centre at integer coordinates, as in OpenCV. Depth is metres
along z with 0 = invalid; pointmaps are (H, W, 3) float32 with invalid pixels all zero.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from geo4d_studio.geometry.se3 import invert


@lru_cache(maxsize=64)
def _cached_rays(K_bytes: bytes, h: int, w: int) -> np.ndarray:
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)
    rays = pixels @ np.linalg.inv(K).T
    rays = (rays / rays[..., 2:3]).astype(np.float32)
    rays.flags.writeable = False
    return rays


def pixel_rays(K: np.ndarray, h: int, w: int) -> np.ndarray:
    """Camera-frame rays (h, w, 3) float32 with z = 1 through every pixel centre (read-only, cached)."""
    K = np.ascontiguousarray(K, dtype=np.float64)
    return _cached_rays(K.tobytes(), int(h), int(w))


def depth_to_pointmap(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Back-project depth (..., H, W) metres to a camera-frame pointmap (..., H, W, 3) float32.

    Pixels whose depth is not > 0 (0, negative, NaN) become all-zero points.
    """
    depth = np.asarray(depth, dtype=np.float32)
    rays = pixel_rays(K, *depth.shape[-2:])
    valid_depth = np.where(depth > 0, depth, np.float32(0.0))
    return valid_depth[..., None] * rays


def pointmap_to_depth(pointmap: np.ndarray) -> np.ndarray:
    """z of a camera-frame pointmap (..., H, W, 3) as depth (..., H, W) float32; z <= 0 becomes 0."""
    z = np.asarray(pointmap)[..., 2].astype(np.float32)
    return np.where(z > 0, z, np.float32(0.0))


def project(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points (..., 3) to pixels: uv (..., 2) float64 and z (..., ).

    Points with z <= 0 (behind the camera or invalid) get uv = NaN.
    """
    points = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    z = points[..., 2]
    homogeneous = points @ K.T
    in_front = (z > 0)[..., None]
    uv = np.divide(
        homogeneous[..., :2], homogeneous[..., 2:3], out=np.full(z.shape + (2,), np.nan), where=in_front
    )
    return uv, z


def render_points(
    points_world: np.ndarray,
    colors: np.ndarray,
    K: np.ndarray,
    T_world_cam: np.ndarray,
    h: int,
    w: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Splat points (N, 3) with colours (N, 3) uint8 into a camera: one pixel per point, z-buffered.

    Returns depth (h, w) float32 (0 where nothing landed) and rgb (h, w, 3) uint8 (black there).
    A point lands on the pixel its projection rounds to; the nearest point wins each pixel
    (`np.minimum.at` on the flat depth buffer). Works column-wise in float32 (no small matmuls).
    """
    points = np.asarray(points_world, dtype=np.float32).reshape(-1, 3)
    T = invert(T_world_cam).astype(np.float32)
    x, y, z_world = points[:, 0], points[:, 1], points[:, 2]

    def camera_axis(i: int) -> np.ndarray:
        out = x * T[i, 0]
        out += y * T[i, 1]
        out += z_world * T[i, 2]
        out += T[i, 3]
        return out

    z = camera_axis(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = np.float32(1.0) / z
        y_image = camera_axis(1) * inv_z
        u = camera_axis(0) * inv_z
    K = np.asarray(K, dtype=np.float32)
    u *= K[0, 0]
    if K[0, 1]:
        u += K[0, 1] * y_image
    u += K[0, 2] + np.float32(0.5)
    v = y_image * K[1, 1]
    v += K[1, 2] + np.float32(0.5)
    index = np.flatnonzero((z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h))
    flat = v.take(index).astype(np.int64) * w + u.take(index).astype(np.int64)  # truncation = floor here
    z = z.take(index)
    zbuffer = np.full(h * w, np.inf, dtype=np.float32)
    np.minimum.at(zbuffer, flat, z)
    nearest = z == zbuffer.take(flat)
    rgb = np.zeros((h * w, 3), dtype=np.uint8)
    rgb[flat[nearest]] = np.asarray(colors, dtype=np.uint8).reshape(-1, 3).take(index[nearest], axis=0)
    zbuffer[np.isinf(zbuffer)] = 0.0
    return zbuffer.reshape(h, w), rgb.reshape(h, w, 3)

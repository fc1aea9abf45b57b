"""Pinhole cameras (OpenCV axes: x right, y down, z forward): rays, depth <-> pointmap, projection.

Pixel (u, v) = (column, row) has its centre at integer coordinates, as in OpenCV. Depth is metres
along z with 0 = invalid; pointmaps are (H, W, 3) float32 with invalid pixels all zero.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from geo4d_studio.geometry.se3 import invert, transform_points


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
    uv = np.divide(homogeneous[..., :2], homogeneous[..., 2:3], out=np.full(z.shape + (2,), np.nan), where=in_front)
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
    The nearest point wins each pixel (`np.minimum.at` on the flat depth buffer).
    """
    points_cam = transform_points(invert(T_world_cam), points_world)
    points_cam = np.asarray(points_cam, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    z = points_cam[:, 2]
    front = z > 0
    points_cam, colors, z = points_cam[front], colors[front], z[front]
    K32 = np.asarray(K, dtype=np.float32)
    u = np.floor((points_cam @ K32[0]) / z + 0.5)
    v = np.floor((points_cam @ K32[1]) / z + 0.5)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    flat = v[inside].astype(np.int64) * w + u[inside].astype(np.int64)
    z, colors = z[inside], colors[inside]
    zbuffer = np.full(h * w, np.inf, dtype=np.float32)
    np.minimum.at(zbuffer, flat, z)
    nearest = z == zbuffer[flat]
    rgb = np.zeros((h * w, 3), dtype=np.uint8)
    rgb[flat[nearest]] = colors[nearest]
    zbuffer[np.isinf(zbuffer)] = 0.0
    return zbuffer.reshape(h, w), rgb.reshape(h, w, 3)

"""Camera rig on a hemisphere around the workspace and pybullet rendering with OpenCV intrinsics/extrinsics.

Conventions: `K` in pixels (OpenCV, pixel centres at integer coordinates), `T_world_cam` camera-to-world
with OpenCV axes (x right, y down, z forward). The OpenGL view/projection matrices handed to pybullet are
derived from exactly these, so a world point projected with K and inv(T_world_cam) lands on the pixel
where the renderer draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo4d_studio.geometry.se3 import invert, look_at

NEAR_M = 0.05
FAR_M = 4.0
MAX_DEPTH_M = 3.0
"""Depth beyond this (background, far floor) is stored as 0 = invalid."""

GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])
"""OpenCV camera axes (x right, y down, z forward) to OpenGL camera axes (x right, y up, z backward)."""


@dataclass(frozen=True)
class RigSpec:
    """Where cameras may be: a hemisphere shell around `target` (world metres, angles in degrees)."""

    target: tuple[float, float, float] = (0.4, 0.0, 0.2)
    radius_m: tuple[float, float] = (0.8, 1.2)
    elevation_deg: tuple[float, float] = (22.0, 50.0)
    azimuth_deg: tuple[float, float] = (-140.0, 140.0)
    """Azimuth 0 looks from +x (facing the robot), ±180 would be behind the robot base."""
    vertical_fov_deg: float = 60.0


@dataclass(frozen=True)
class SimCamera:
    """A pinhole camera: name, K (3, 3) in pixels, T_world_cam (4, 4) OpenCV camera-to-world, image size."""

    name: str
    K: np.ndarray
    T_world_cam: np.ndarray
    height: int
    width: int


def intrinsics(height: int, width: int, vertical_fov_deg: float) -> np.ndarray:
    """Square-pixel K with the principal point at the image centre ((W-1)/2, (H-1)/2)."""
    f = 0.5 * height / np.tan(np.radians(vertical_fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def make_rig(
    rng: np.random.Generator, count: int, size: tuple[int, int], spec: RigSpec = RigSpec()
) -> list[SimCamera]:
    """`count` cameras with stratified azimuths (one random azimuth per equal sector, so they surround the
    workspace and every pair overlaps on it), random radius and elevation, all looking at the target."""
    height, width = size
    target = np.asarray(spec.target)
    edges = np.linspace(*spec.azimuth_deg, count + 1)
    azimuth = np.radians(edges[:-1] + rng.uniform(0.15, 0.85, count) * np.diff(edges))
    elevation = np.radians(rng.uniform(*spec.elevation_deg, count))
    radius = rng.uniform(*spec.radius_m, count)
    offsets = radius[:, None] * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=1
    )
    K = intrinsics(height, width, spec.vertical_fov_deg)
    poses = look_at(target + offsets, target)
    return [SimCamera(f"cam{i:02d}", K.copy(), poses[i], height, width) for i in range(count)]


def gl_view_matrix(T_world_cam: np.ndarray) -> list[float]:
    """pybullet view matrix (column-major 16 floats) for an OpenCV camera-to-world pose."""
    view = GL_FROM_CV @ invert(T_world_cam)
    return view.flatten(order="F").tolist()


def gl_projection_matrix(
    K: np.ndarray, height: int, width: int, near: float = NEAR_M, far: float = FAR_M
) -> list[float]:
    """pybullet projection matrix (column-major) that reproduces the pinhole K, principal point included.

    ER_TINY_RENDERER samples pixel (column c, row r) at window coordinates x = c, y = H − 1 − r (integer
    positions, rows from the top; measured against ray-plane depth to 1e-6 m). So OpenCV pixel (u, v) must
    map to x_ndc = 2u/W − 1 and y_ndc = 1 − 2(v + 1)/H.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    P = np.zeros((4, 4))
    P[0, 0] = 2 * fx / width
    P[0, 2] = 1 - 2 * cx / width
    P[1, 1] = 2 * fy / height
    P[1, 2] = 2 * (cy + 1) / height - 1
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = -1.0
    return P.flatten(order="F").tolist()


def buffer_to_metric_depth(buffer: np.ndarray, near: float = NEAR_M, far: float = FAR_M) -> np.ndarray:
    """OpenGL depth buffer in [0, 1] → z depth in metres (float32); beyond MAX_DEPTH_M → 0 (invalid)."""
    z = far * near / (far - (far - near) * buffer.astype(np.float64))
    return np.where(z > MAX_DEPTH_M, 0.0, z).astype(np.float32)


def render(client: int, camera: SimCamera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view with ER_TINY_RENDERER: rgb (H, W, 3) uint8, depth (H, W) float32 m, segmentation
    (H, W) int32 (object uid + (link index + 1) << 24, −1 background)."""
    import pybullet as pb

    _, _, rgba, depth_buffer, seg = pb.getCameraImage(
        camera.width,
        camera.height,
        viewMatrix=gl_view_matrix(camera.T_world_cam),
        projectionMatrix=gl_projection_matrix(camera.K, camera.height, camera.width),
        renderer=pb.ER_TINY_RENDERER,
        flags=pb.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX,
        lightDirection=[0.6, 0.4, 1.0],
        shadow=0,
        physicsClientId=client,
    )
    shape = (camera.height, camera.width)
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(*shape, 4)[..., :3].copy()
    depth = buffer_to_metric_depth(np.asarray(depth_buffer, dtype=np.float32).reshape(shape))
    return rgb, depth, np.asarray(seg, dtype=np.int32).reshape(shape)

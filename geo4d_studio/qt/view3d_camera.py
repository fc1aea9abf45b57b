"""OpenCV camera (pose + intrinsics) <-> VTK camera, and picking frustums on screen.

Conventions: `T_world_cam` is camera-to-world with OpenCV axes (x right, y down, z forward); VTK looks
along its direction of projection with view-up on screen. So VTK focal point = position + z_cam, VTK
view-up = -y_cam. VTK display coordinates have their origin at the bottom-left of the viewport.
"""

from __future__ import annotations

import math

import numpy as np
import vtk


def fit_view(
    K: np.ndarray, image_size: tuple[int, int], viewport_size: tuple[int, int]
) -> tuple[float, bool, tuple[float, float], float]:
    """How to show a pinhole image whole and centred in a viewport.

    `image_size` and `viewport_size` are (width, height) in pixels. Returns (view angle in degrees,
    whether it is the horizontal angle, VTK window centre, viewport pixels per image pixel). The
    image is letter-boxed: the vertical angle (from fy and the image height) when the viewport is
    at least as wide as the image's aspect, otherwise the horizontal one (from fx and the width).
    Pixel centres are at integer coordinates (OpenCV), so the image spans [-0.5, w - 0.5].
    """
    w, h = image_size
    vw, vh = viewport_size
    horizontal = vw / vh < w / h
    if horizontal:
        angle = 2.0 * math.degrees(math.atan(0.5 * w / K[0, 0]))
        scale = vw / w
    else:
        angle = 2.0 * math.degrees(math.atan(0.5 * h / K[1, 1]))
        scale = vh / h
    # Principal point offset from the image centre ((w - 1) / 2: OpenCV pixel centres are integers)
    # in normalised device coordinates (y up); VTK puts the optical axis at NDC -WindowCenter.
    x_ndc = (K[0, 2] - 0.5 * (w - 1)) * scale / (0.5 * vw)
    y_ndc = -(K[1, 2] - 0.5 * (h - 1)) * scale / (0.5 * vh)
    return angle, horizontal, (-x_ndc, -y_ndc), scale


def set_vtk_pose(camera: vtk.vtkCamera, T_world_cam: np.ndarray, focal_distance: float = 1.0) -> None:
    """Place a VTK camera at an OpenCV camera-to-world pose (focal point `focal_distance` ahead)."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    position, R = T[:3, 3], T[:3, :3]
    camera.SetPosition(*position)
    camera.SetFocalPoint(*(position + focal_distance * R[:, 2]))
    camera.SetViewUp(*(-R[:, 1]))


def set_vtk_intrinsics(
    camera: vtk.vtkCamera, K: np.ndarray, image_size: tuple[int, int], viewport_size: tuple[int, int]
) -> None:
    """Give a VTK camera the field of view and principal point of a pinhole camera (letter-boxed)."""
    angle, horizontal, centre, _ = fit_view(K, image_size, viewport_size)
    camera.SetUseHorizontalViewAngle(horizontal)
    camera.SetViewAngle(angle)
    camera.SetWindowCenter(*centre)


def vtk_pose(camera: vtk.vtkCamera) -> np.ndarray:
    """The OpenCV camera-to-world pose (4, 4) of a VTK camera."""
    position = np.array(camera.GetPosition())
    z = np.array(camera.GetDirectionOfProjection())
    z /= np.linalg.norm(z)
    up = np.array(camera.GetViewUp())
    y = -(up - z * (up @ z))
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, position
    return T


def project_to_display(
    camera: vtk.vtkCamera, points_world: np.ndarray, viewport_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, 3) world points to VTK display pixels (N, 2); also (N,) bool: in front of camera."""
    vw, vh = viewport_size
    M = camera.GetCompositeProjectionTransformMatrix(vw / vh, -1.0, 1.0)
    P = np.array([[M.GetElement(i, j) for j in range(4)] for i in range(4)])
    homogeneous = np.c_[points_world, np.ones(len(points_world))] @ P.T
    in_front = homogeneous[:, 3] > 1e-9
    w = np.where(in_front, homogeneous[:, 3], 1.0)
    ndc = homogeneous[:, :2] / w[:, None]
    return (ndc + 1.0) * 0.5 * np.array([vw, vh]), in_front


def nearest_segment(
    click_xy: tuple[float, float],
    segments_xy: np.ndarray,
    valid: np.ndarray,
    owners: np.ndarray,
    max_distance_px: float,
) -> int | None:
    """The owner of the on-screen segment nearest to a click, if within `max_distance_px`.

    `segments_xy` (S, 2, 2) display coordinates of segment ends, `valid` (S,) bool, `owners` (S,) int.
    """
    if not valid.any():
        return None
    a, b = segments_xy[valid, 0], segments_xy[valid, 1]
    p = np.asarray(click_xy, dtype=np.float64)
    ab = b - a
    length2 = np.maximum((ab * ab).sum(axis=1), 1e-12)
    s = np.clip(((p - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
    distance = np.linalg.norm(a + s[:, None] * ab - p, axis=1)
    best = int(np.argmin(distance))
    return int(owners[valid][best]) if distance[best] <= max_distance_px else None

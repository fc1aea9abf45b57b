"""OpenCV <-> VTK camera conversion, letter-boxing and frustum picking (VTK only, no window)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import vtk

from geo4d_studio.geometry.se3 import look_at
from geo4d_studio.qt.view3d_camera import (
    fit_view,
    nearest_segment,
    project_to_display,
    set_vtk_intrinsics,
    set_vtk_pose,
    vtk_pose,
)
from geo4d_studio.qt.view3d_layers import decimation_stride, frustum_segments, polyline_segments

K = np.array([[100.0, 0.0, 70.0], [0.0, 100.0, 45.0], [0.0, 0.0, 1.0]])  # principal point off centre


def _pixel_of(camera: vtk.vtkCamera, point: np.ndarray, viewport: tuple[int, int]) -> np.ndarray:
    xy, in_front = project_to_display(camera, point[None], viewport)
    assert in_front[0]
    return xy[0]


def test_pose_round_trip() -> None:
    T = look_at(np.array([0.7, -0.4, 0.9]), np.array([0.1, 0.2, 0.0]))
    camera = vtk.vtkCamera()
    set_vtk_pose(camera, T, focal_distance=0.8)
    assert np.allclose(vtk_pose(camera), T, atol=1e-9)
    assert np.allclose(camera.GetViewUp(), -T[:3, 1])  # VTK up = -y of the OpenCV camera


@pytest.mark.parametrize("viewport", [(640, 400), (300, 400)])
def test_vtk_projection_equals_pinhole_projection(viewport: tuple[int, int]) -> None:
    """A point's VTK display pixel equals its OpenCV pixel, letter-boxed into the viewport."""
    w, h = 128, 96
    T = look_at(np.array([1.0, 0.2, 0.8]), np.zeros(3))
    camera = vtk.vtkCamera()
    set_vtk_pose(camera, T)
    set_vtk_intrinsics(camera, K, (w, h), viewport)
    camera.SetClippingRange(0.01, 10.0)
    _, horizontal, _, scale = fit_view(K, (w, h), viewport)
    assert horizontal == (viewport[0] / viewport[1] < w / h)
    offset = 0.5 * (np.array(viewport) - scale * np.array([w, h]))
    rng = np.random.default_rng(0)
    for _ in range(5):
        uv = rng.uniform([0, 0], [w, h])
        z = rng.uniform(0.5, 2.0)
        point_cam = z * np.linalg.solve(K, [uv[0], uv[1], 1.0])
        point_world = T[:3, :3] @ point_cam + T[:3, 3]
        expected = offset + scale * (uv + 0.5)  # pixel centres are integers: the image spans [-0.5, w - 0.5]
        expected[1] = viewport[1] - expected[1]  # VTK display y runs up
        assert np.allclose(_pixel_of(camera, point_world, viewport), expected, atol=1e-6)


def test_fit_view_angles() -> None:
    centred = K.copy()
    centred[:2, 2] = (69.5, 44.5)
    angle, horizontal, centre, scale = fit_view(centred, (140, 90), (280, 180))
    assert not horizontal and scale == 2.0
    assert math.isclose(angle, 2 * math.degrees(math.atan(45 / 100)))
    assert centre == (0.0, 0.0)  # principal point at the image centre, (w - 1) / 2


def test_nearest_segment_picks_closest_owner_within_radius() -> None:
    segments = np.array([[[0, 0], [100, 0]], [[0, 50], [100, 50]], [[0, 10], [100, 10]]], dtype=float)
    owners = np.array([0, 1, 2])
    valid = np.array([True, True, False])
    assert nearest_segment((50, 8), segments, valid, owners, 10.0) == 0  # the nearer one is invalid
    assert nearest_segment((50, 44), segments, valid, owners, 10.0) == 1
    assert nearest_segment((50, 25), segments, valid, owners, 10.0) is None


def test_frustum_corners_project_to_image_corners() -> None:
    T = look_at(np.array([0.5, 0.5, 0.5]), np.zeros(3))
    segments = frustum_segments(K, T, 140, 90, depth_m=0.3)
    corners = segments[4:8, 0]  # tl, tr, br, bl
    cam = (corners - T[:3, 3]) @ T[:3, :3]
    assert np.allclose(cam[:, 2], 0.3)
    uv = (cam / cam[:, 2:]) @ K.T
    assert np.allclose(uv[:, :2], [[0, 0], [140, 0], [140, 90], [0, 90]])
    assert np.allclose(segments[:4, 0], T[:3, 3])


def test_polyline_breaks_at_lost_poses() -> None:
    points = np.array([[0, 0, 0], [1, 0, 0], [np.nan] * 3, [2, 0, 0], [3, 0, 0], [4, 0, 0]])
    segments = polyline_segments(points)
    assert segments.shape == (3, 2, 3)
    assert np.allclose(segments[0], [[0, 0, 0], [1, 0, 0]])
    assert np.allclose(segments[1], [[2, 0, 0], [3, 0, 0]])


def test_decimation_stride_keeps_every_kth_point_within_the_limit() -> None:
    assert decimation_stride(100, 1, 200) == 1  # nothing to decimate
    assert decimation_stride(100, 4, 200) == 4  # the stride alone
    for n, every, limit in ((1_000_003, 4, 200_000), (999, 1, 10), (7, 3, 1)):
        stride = decimation_stride(n, every, limit)
        assert stride >= every and len(range(0, n, stride)) <= limit
        assert len(range(0, n, stride - 1)) > limit or stride == every  # the smallest such stride

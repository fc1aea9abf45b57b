"""Pinhole camera: rays, depth <-> pointmap, projection and the z-buffered point renderer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geo4d_studio.geometry import se3
from geo4d_studio.geometry.camera import (
    depth_to_pointmap,
    pixel_rays,
    pointmap_to_depth,
    project,
    render_points,
)

H, W = 12, 16


@st.composite
def intrinsics(draw):
    f = draw(st.floats(8, 40))
    return np.array(
        [[f, 0, draw(st.floats(4, 12))], [0, f * draw(st.floats(0.8, 1.2)), draw(st.floats(3, 9))], [0, 0, 1]]
    )


depths = arrays(np.float32, (H, W), elements=st.sampled_from([0.0, 0.3, 0.77, 1.5, 2.0, 4.25]))


def test_pixel_rays_match_pinhole_and_are_cached():
    K = np.array([[100.0, 0, 32], [0, 120, 24], [0, 0, 1]])
    rays = pixel_rays(K, 48, 64)
    assert rays.shape == (48, 64, 3) and rays.dtype == np.float32
    assert np.allclose(rays[..., 2], 1)
    assert np.allclose(rays[10, 40], [(40 - 32) / 100, (10 - 24) / 120, 1])
    assert pixel_rays(K.copy(), 48, 64) is rays
    assert not rays.flags.writeable


@settings(max_examples=40, deadline=None)
@given(depths, intrinsics())
def test_depth_pointmap_project_round_trip(depth, K):
    pm = depth_to_pointmap(depth, K)
    assert pm.dtype == np.float32
    valid = depth > 0
    assert np.all(pm[~valid] == 0)
    assert np.allclose(pointmap_to_depth(pm), depth)
    uv, z = project(pm[valid], K)
    v, u = np.nonzero(valid)
    assert np.allclose(uv, np.stack([u, v], axis=1), atol=1e-4)
    assert np.allclose(z, depth[valid], rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(depths, intrinsics())
def test_render_pointmap_into_own_camera_reproduces_depth(depth, K):
    T_world_cam = se3.look_at([0.4, -0.3, 1.2], [0, 0, 0])
    pm = depth_to_pointmap(depth, K)
    valid = depth > 0
    colors = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    world = se3.transform_points(T_world_cam, pm[valid])
    rendered_depth, rendered_rgb = render_points(world, colors[valid], K, T_world_cam, H, W)
    assert rendered_depth.dtype == np.float32 and rendered_rgb.dtype == np.uint8
    assert np.allclose(rendered_depth, depth, rtol=1e-5)
    assert np.array_equal(rendered_rgb[valid], colors[valid])
    assert np.all(rendered_rgb[~valid] == 0)


def test_render_points_keeps_nearest_and_drops_outside():
    K = np.array([[10.0, 0, 2], [0, 10, 2], [0, 0, 1]])
    points = np.array([[0, 0, 2.0], [0, 0, 1.0], [0, 0, 3.0], [0, 0, -1.0], [5, 0, 1.0]])
    colors = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 5, 5]], np.uint8)
    depth, rgb = render_points(points, colors, K, np.eye(4), 5, 5)
    assert depth[2, 2] == 1.0 and tuple(rgb[2, 2]) == (2, 2, 2)
    assert np.count_nonzero(depth) == 1


def test_project_marks_points_behind_camera():
    uv, z = project(np.array([[0.1, 0.2, -1.0], [0.1, 0.2, 1.0]]), np.eye(3))
    assert np.isnan(uv[0]).all() and np.allclose(uv[1], [0.1, 0.2]) and np.allclose(z, [-1, 1])

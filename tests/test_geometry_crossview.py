"""Cross-view projection: view m's depth moved into view n's frame matches what n sees."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.ndimage import map_coordinates

from geo4d_studio.geometry import se3
from geo4d_studio.geometry.camera import depth_to_pointmap, pixel_rays, project, render_points
from geo4d_studio.geometry.crossview import pointmap_to_frame

SPHERE_CENTRE, SPHERE_RADIUS, TABLE_HALF = np.array([0.05, -0.02, 0.12]), 0.12, 0.5


def raycast_depth(K, T_world_cam, h, w):
    """Exact depth of a table square (z = 0, |x|, |y| < 0.5 m) with a sphere on it, by ray casting."""
    rays = pixel_rays(K, h, w).astype(np.float64) @ T_world_cam[:3, :3].T  # world direction, cam z = 1
    origin = T_world_cam[:3, 3]
    t_plane = -origin[2] / rays[..., 2]
    hit = origin + t_plane[..., None] * rays
    on_table = (t_plane > 0) & (np.abs(hit[..., 0]) < TABLE_HALF) & (np.abs(hit[..., 1]) < TABLE_HALF)
    t_plane = np.where(on_table, t_plane, np.inf)
    oc = origin - SPHERE_CENTRE
    a = np.sum(rays * rays, axis=-1)
    b = 2 * rays @ oc
    disc = b * b - 4 * a * (oc @ oc - SPHERE_RADIUS**2)
    t_sphere = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
    t_sphere = np.where(t_sphere > 0, t_sphere, np.inf)
    depth = np.minimum(t_plane, t_sphere)
    return np.where(np.isfinite(depth), depth, 0).astype(np.float32)


def crossview_depth_error(depth_m, K_m, T_m, depth_n, K_n, T_n):
    """View m's points moved into n and z-buffered there; for the visible ones (nearest at their pixel)
    whose four neighbouring pixels of n have depth, |z - n's depth interpolated at the exact projection|.
    Also returns the fraction of m's valid pixels that were compared."""
    pm_in_n = pointmap_to_frame(depth_to_pointmap(depth_m, K_m), T_m, T_n)[depth_m > 0]
    zbuffer, _ = render_points(pm_in_n, np.zeros(pm_in_n.shape, np.uint8), K_n, np.eye(4), *depth_n.shape)
    uv, z = project(pm_in_n, K_n)
    h, w = depth_n.shape
    inside = np.isfinite(uv).all(axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0)
    inside &= uv[:, 1] <= h - 1
    uv, z = uv[inside], z[inside]
    pixel = np.floor(uv + 0.5).astype(int)
    visible = np.isclose(z, zbuffer[pixel[:, 1], pixel[:, 0]], rtol=1e-6)
    corners = np.floor(uv).astype(int)
    u0, v0 = np.minimum(corners[:, 0], w - 2), np.minimum(corners[:, 1], h - 2)
    neighbours = depth_n[v0, u0], depth_n[v0, u0 + 1], depth_n[v0 + 1, u0], depth_n[v0 + 1, u0 + 1]
    compared = visible & np.all(np.stack(neighbours) > 0, axis=0)
    sampled = map_coordinates(depth_n, uv[compared][:, ::-1].T, order=1)
    return np.abs(sampled - z[compared]), compared.sum() / len(inside)


def test_pointmap_to_frame_applies_relative_pose_and_keeps_zeros():
    T_m = se3.look_at([0.8, 0.2, 0.6], [0, 0, 0])
    T_n = se3.look_at([-0.5, 0.7, 0.9], [0, 0, 0.1])
    pm = np.zeros((3, 4, 3), np.float32)
    pm[1, 2] = [0.1, -0.2, 0.9]
    moved = pointmap_to_frame(pm, T_m, T_n)
    expected = se3.transform_points(se3.invert(T_n), se3.transform_points(T_m, pm[1, 2].astype(np.float64)))
    assert moved.dtype == np.float32
    assert np.allclose(moved[1, 2], expected, atol=1e-6)
    assert np.count_nonzero(moved.any(axis=-1)) == 1
    batched = pointmap_to_frame(np.stack([pm, pm]), np.stack([T_m, T_n]), np.stack([T_n, T_n]))
    assert np.allclose(batched[0], moved, atol=1e-6) and np.allclose(batched[1], pm, atol=1e-6)


def test_crossview_synthetic_scene_agrees_in_other_view():
    K = np.array([[140.0, 0, 79.5], [0, 140.0, 59.5], [0, 0, 1]])
    T_m = se3.look_at([0.7, -0.5, 0.8], [0, 0, 0.05])
    T_n = se3.look_at([-0.6, -0.6, 0.7], [0, 0, 0.05])
    depth_m, depth_n = raycast_depth(K, T_m, 120, 160), raycast_depth(K, T_n, 120, 160)
    errors, overlap = crossview_depth_error(depth_m, K, T_m, depth_n, K, T_n)
    assert overlap > 0.4
    assert np.median(errors) < 1e-4
    # a 3 cm error in the extrinsics shows up clearly
    shifted = T_m.copy()
    shifted[:3, 3] += [0, 0, 0.03]
    bad_errors, _ = crossview_depth_error(depth_m, K, shifted, depth_n, K, T_n)
    assert np.median(bad_errors) > np.median(errors) + 1e-2


def test_crossview_on_shipped_sample_episodes(sample_paths):
    from geo4d_studio.scene import open_scene

    medians = []
    for path in sample_paths:
        with open_scene(path) as scene:
            t = scene.num_frames // 2
            for name_m, name_n in itertools.permutations(scene.camera_names, 2):
                cam_m, cam_n = scene.cameras[name_m], scene.cameras[name_n]
                errors, overlap = crossview_depth_error(
                    scene.depth(name_m, t),
                    cam_m.K,
                    cam_m.pose(t),
                    scene.depth(name_n, t),
                    cam_n.K,
                    cam_n.pose(t),
                )
                assert overlap > 0.2, (path.name, name_m, name_n, overlap)
                medians.append(np.median(errors))
    # measured 0.03-0.2 mm over all pairs; a half-pixel principal-point error gives ~6 mm
    assert max(medians) < 1e-3, medians

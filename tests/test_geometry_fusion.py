"""Fusion of RGB-D views into a world cloud, voxel downsampling, and camera paths."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry import se3
from geo4d_studio.geometry.camera_path import ROTATION_WEIGHT_M, CameraPath
from geo4d_studio.geometry.fusion import fuse_frame, fuse_views, voxel_downsample

K = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])


def plane_view(eye, colour, h=24, w=32):
    """A view looking straight down at the table z = 0 from `eye`, depth exact, with holes."""
    T = se3.look_at(eye, [eye[0], eye[1] + 1e-3, 0.0], up=(0, 1, 0))
    depth = np.full((h, w), eye[2], np.float32)
    depth[:3, :5] = 0  # invalid pixels are skipped
    rgb = np.broadcast_to(np.asarray(colour, np.uint8), (h, w, 3)).copy()
    return rgb, depth, K, T


def test_fuse_views_counts_positions_and_colours():
    views = [plane_view([0.0, 0.0, 0.8], (255, 0, 0)), plane_view([0.3, 0.1, 1.1], (0, 0, 255))]
    points, colors = fuse_views(views)
    valid_per_view = 24 * 32 - 15
    assert points.shape == (2 * valid_per_view, 3) and points.dtype == np.float32
    assert colors.shape == points.shape and colors.dtype == np.uint8
    assert np.allclose(points[:, 2], 0, atol=1e-2)  # every point lies on the table
    assert np.all(colors[:valid_per_view] == (255, 0, 0)) and np.all(colors[valid_per_view:] == (0, 0, 255))
    centre = points[:valid_per_view, :2].mean(axis=0)
    assert np.allclose(centre, [0.0, 0.0], atol=0.02)
    empty_points, empty_colors = fuse_views([])
    assert empty_points.shape == (0, 3) and empty_colors.shape == (0, 3)


def test_voxel_downsample_reduces_and_keeps_centroid():
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.5, 0.5, (20000, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (20000, 3)).astype(np.uint8)
    down, down_colors = voxel_downsample(points, colors, 0.1)
    assert len(down) == 1000  # 10 x 10 x 10 occupied voxels
    cells = np.floor(points / 0.1).astype(int)
    one_cell = np.all(cells == [0, 0, 0], axis=1)
    match = np.all(np.floor(down / 0.1).astype(int) == [0, 0, 0], axis=1)
    assert match.sum() == 1
    assert np.allclose(down[match][0], points[one_cell].mean(axis=0), atol=1e-6)
    assert np.allclose(down_colors[match][0], colors[one_cell].mean(axis=0), atol=0.5)
    # the centroid weighted by the number of points per voxel is the centroid of the input
    counts = np.bincount(np.unique(cells, axis=0, return_inverse=True)[1].ravel())
    order = np.lexsort(np.floor(down / 0.1).astype(int).T[::-1])
    assert np.allclose(np.average(down[order], axis=0, weights=counts), points.mean(axis=0), atol=1e-5)
    with pytest.raises(ValueError):
        voxel_downsample(points, colors, 0.0)


def test_fuse_views_with_voxels_merges_overlapping_views():
    view = plane_view([0.0, 0.0, 0.8], (10, 20, 30))
    single, _ = fuse_views([view], voxel_m=0.02)
    double, double_colors = fuse_views([view, view], voxel_m=0.02)
    assert len(double) == len(single) < 24 * 32
    assert np.all(double_colors == (10, 20, 30))


def test_fuse_frame_on_sample_episode(sample_path):
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        name = scene.camera_names[0]
        points, colors = fuse_frame(scene, 0, cameras=[name])
        assert len(points) == np.count_nonzero(scene.depth(name, 0) > 0)
        assert np.array_equal(colors, scene.rgb(name, 0)[scene.depth(name, 0) > 0])
        all_points, _ = fuse_frame(scene, 0)
        down, _ = fuse_frame(scene, 0, voxel_m=0.01)
        assert len(down) < len(all_points) and len(all_points) > len(points)
        with pytest.raises(Geo4DError, match=f"frame {scene.num_frames} is out of range"):
            fuse_frame(scene, scene.num_frames)
        with pytest.raises(Geo4DError, match="no camera named nope"):
            fuse_frame(scene, 0, cameras=["nope"])


def test_camera_path_endpoints_clamp_and_even_pace():
    poses = np.stack(
        [np.eye(4), se3.from_quat_xyzw([1, 0, 0], [0, 0, 0, 1]), se3.from_quat_xyzw([3, 0, 0], [0, 0, 0, 1])]
    )
    path = CameraPath(poses)
    assert np.allclose(path.pose_at(0), poses[0]) and np.allclose(path.pose_at(1), poses[2])
    assert np.allclose(path.pose_at(-2), poses[0]) and np.allclose(path.pose_at(7), poses[2])
    assert np.allclose(path.pose_at(0.5)[:3, 3], [1.5, 0, 0])  # by length, not by segment index
    assert np.allclose(path.pose_at(1 / 3)[:3, 3], [1.0, 0, 0])


def test_camera_path_turn_in_place_and_single_pose():
    turn = se3.from_quat_xyzw([0, 0, 0], [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    path = CameraPath(np.stack([np.eye(4), turn]))
    assert np.isclose(path.length, ROTATION_WEIGHT_M * np.pi / 2)
    half = path.pose_at(0.5)
    assert np.isclose(np.degrees(np.arccos((np.trace(half[:3, :3]) - 1) / 2)), 45)
    single = CameraPath(turn[None])
    assert np.allclose(single.pose_at(0.3), turn)
    with pytest.raises(ValueError):
        CameraPath(np.zeros((2, 4, 4)))

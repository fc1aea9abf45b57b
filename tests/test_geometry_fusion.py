"""Fusion of RGB-D views into a world cloud, voxel downsampling, and camera paths.

The numba kernels are checked against straightforward numpy / dict references written here.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry import fusion, se3
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


def random_view(rng, h=24, w=32, eye=(0.4, -0.3, 0.9), extremes=False):
    """A view of a bumpy surface with every kind of invalid depth: 0, -0, negative, NaN, +-inf; with
    `extremes` also valid subnormal and huge depths."""
    depth = rng.uniform(0.3, 2.0, (h, w)).astype(np.float32)
    bad = rng.random((h, w)) < 0.3
    depth[bad] = rng.choice(np.array([0.0, -0.0, -1.0, np.nan, np.inf, -np.inf], np.float32), bad.sum())
    if extremes:
        depth[0, :3] = [1e-40, 3e30, 0.0]
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return rgb, depth, K, se3.look_at(eye, [0.0, 0.1, 0.0])


def reference_fuse(views):
    """depth * K^-1 [u v 1] moved by T, for every pixel with a finite depth > 0, in view and raster order."""
    points, colors = [], []
    for rgb, depth, K_, T in views:
        v, u = np.nonzero((depth > 0) & np.isfinite(depth))
        pixels = np.stack([u, v, np.ones_like(u)]).astype(np.float64)
        cam = (np.linalg.inv(K_) @ pixels) * depth[v, u].astype(np.float64)
        points.append((T[:3, :3] @ cam).T + T[:3, 3])
        colors.append(rgb[v, u])
    return np.concatenate(points or [np.zeros((0, 3))]), np.concatenate(
        colors or [np.zeros((0, 3), np.uint8)]
    )


def reference_voxels(points, colors, voxel_m):
    """Per voxel floor(point / voxel_m), in order of first point: mean point and rounded mean colour."""
    groups = {}
    for point, color in zip(points.astype(np.float64), colors.astype(np.float64), strict=True):
        key = tuple(np.floor(point * (1.0 / voxel_m)))
        count, point_sum, color_sum = groups.get(key, (0, 0.0, 0.0))
        groups[key] = (count + 1, point_sum + point, color_sum + color)
    means = [(s / n, c / n) for n, s, c in groups.values()]
    return (
        np.array([m for m, _ in means], np.float32).reshape(-1, 3),
        np.rint([c for _, c in means]).astype(np.uint8).reshape(-1, 3),
    )


def test_fuse_views_matches_the_reference_with_invalid_depths():
    rng = np.random.default_rng(7)
    views = [
        random_view(rng, extremes=True),
        random_view(rng, h=9, w=13, eye=(-0.5, 0.2, 1.4)),
        random_view(rng),
    ]
    points, colors = fuse_views(views)
    expected_points, expected_colors = reference_fuse(views)
    assert points.dtype == np.float32 and colors.dtype == np.uint8
    assert points.shape == expected_points.shape and points.shape[0] < sum(v[1].size for v in views)
    finite = np.abs(expected_points).max(axis=1) < 1e6  # the 3e30 depth lands far away
    assert np.allclose(points[finite], expected_points[finite], rtol=1e-6, atol=1e-5)
    assert np.allclose(points[~finite], expected_points[~finite], rtol=1e-5)
    assert np.array_equal(colors, expected_colors)


def test_fuse_views_accepts_any_layout_and_dtype():
    rng = np.random.default_rng(8)
    rgb, depth, K_, T = random_view(rng, h=32, w=24)
    transposed = (rgb.transpose(1, 0, 2)[:, ::-1], depth.T[:, ::-1].astype(np.float64), K_, T)
    copied = tuple(np.ascontiguousarray(a) for a in transposed[:2]) + (K_, T)
    assert transposed[1].dtype == np.float64 and not transposed[0].flags.c_contiguous
    for ours, theirs in zip(fuse_views([transposed]), fuse_views([copied]), strict=True):
        assert np.array_equal(ours, theirs)
    with pytest.raises(ValueError, match="does not match"):
        fuse_views([(rgb[:, :-1], depth, K_, T)])


def test_fuse_views_empty_inputs():
    rng = np.random.default_rng(9)
    rgb, depth, K_, T = random_view(rng)
    for views in ([], [(rgb, np.zeros_like(depth), K_, T)], [(rgb, np.full_like(depth, np.nan), K_, T)]):
        for voxel in (None, 0.01):
            points, colors = fuse_views(views, voxel_m=voxel)
            assert points.shape == (0, 3) and points.dtype == np.float32
            assert colors.shape == (0, 3) and colors.dtype == np.uint8


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


@pytest.mark.parametrize("voxel_m", [0.1, 0.013, 1e-3])
def test_voxel_downsample_matches_the_reference(voxel_m):
    rng = np.random.default_rng(4)
    # clustered points straddling zero (negative voxel keys), a far-away cluster, exact duplicates
    points = np.concatenate(
        [
            rng.normal(0.0, 0.2, (3000, 3)),
            rng.normal([-5e3, 2e3, -7e3], 0.05, (500, 3)),  # cells beyond +-2**20 at 1 mm
            np.repeat(rng.normal(0.0, 0.2, (50, 3)), 4, axis=0),
        ]
    ).astype(np.float32)
    colors = rng.integers(0, 256, (len(points), 3), dtype=np.uint8)
    down, down_colors = voxel_downsample(points, colors, voxel_m)
    expected, expected_colors = reference_voxels(points, colors, voxel_m)
    assert down.dtype == np.float32 and down_colors.dtype == np.uint8
    assert np.array_equal(down, expected)  # same order (first point), same float64 sums
    assert np.array_equal(down_colors, expected_colors)


def test_voxel_downsample_edge_cases():
    one, red = np.array([[-0.05, 0.25, -3.0]], np.float32), np.array([[200, 1, 2]], np.uint8)
    down, down_colors = voxel_downsample(one, red, 0.1)
    assert np.array_equal(down, one) and np.array_equal(down_colors, red)
    empty_points, empty_colors = voxel_downsample(np.zeros((0, 3)), np.zeros((0, 3)), 0.1)
    assert empty_points.shape == (0, 3) and empty_colors.shape == (0, 3)
    # voxel boundaries at multiples of voxel_m; colour means round half to even like np.rint
    points = np.array([[0.0, 0, 0], [0.09, 0, 0], [-0.01, 0, 0], [0.1, 0, 0]], np.float32)
    colors = np.array([[1, 2, 0], [2, 3, 0], [7, 7, 7], [9, 9, 9]], np.uint8)
    down, down_colors = voxel_downsample(points, colors, 0.1)
    assert np.allclose(down[:, 0], [0.045, -0.01, 0.1])
    assert down_colors.tolist() == [[2, 2, 0], [7, 7, 7], [9, 9, 9]]
    with pytest.raises(ValueError, match="voxel size"):
        voxel_downsample(one, red, 0.0)
    with pytest.raises(ValueError, match="voxel size"):
        voxel_downsample(one, red, float("nan"))
    with pytest.raises(ValueError, match="too small for the extent"):  # voxel indices past int32
        voxel_downsample(np.array([[3e6, 0.0, 0.0]]), red, 1e-3)
    with pytest.raises(ValueError, match="colours"):
        voxel_downsample(np.zeros((2, 3)), red, 0.1)


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


def test_fuse_views_with_voxels_merges_overlapping_views():
    view = plane_view([0.0, 0.0, 0.8], (10, 20, 30))
    single, _ = fuse_views([view], voxel_m=0.02)
    double, double_colors = fuse_views([view, view], voxel_m=0.02)
    assert len(double) == len(single) < 24 * 32
    assert np.all(double_colors == (10, 20, 30))
    rng = np.random.default_rng(5)
    views = [random_view(rng), random_view(rng)]
    expected = reference_voxels(*fuse_views(views), 0.05)
    for ours, theirs in zip(fuse_views(views, voxel_m=0.05), expected, strict=True):
        assert np.array_equal(ours, theirs)


def test_two_threads_voxelise_like_one(monkeypatch):
    """Large clouds are voxelised in two halves by two threads and merged: same voxels, same order,
    same float64 sums as one pass, also when the split falls inside a view and for plain points."""
    rng = np.random.default_rng(11)
    views = [
        random_view(rng, h=27, w=32, eye=eye) for eye in ((0.4, -0.3, 0.9), (-0.5, 0.2, 0.7), (0.0, 0.6, 1.1))
    ]
    monkeypatch.setattr(fusion, "PARALLEL_PIXELS", 0)
    for voxel_m in (0.05, 0.2):
        expected = reference_voxels(*fuse_views(views), voxel_m)
        for ours, theirs in zip(fuse_views(views, voxel_m=voxel_m), expected, strict=True):
            assert np.array_equal(ours, theirs)
    points = rng.normal(0.0, 0.3, (5000, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    for ours, theirs in zip(
        voxel_downsample(points, colors, 0.1), reference_voxels(points, colors, 0.1), strict=True
    ):
        assert np.array_equal(ours, theirs)


def test_halves_split_the_pixels_at_a_row_near_the_middle():
    rng = np.random.default_rng(12)
    flats = [fusion._flat_view(random_view(rng, h=h, w=10)) for h in (5, 8, 4)]  # 170 pixels
    first, second = fusion._halves(flats)
    depth = np.concatenate([flat[0] for flat in flats])
    halves = [np.concatenate([flat[0] for flat in half]) for half in (first, second)]
    assert np.array_equal(np.concatenate(halves), depth, equal_nan=True)
    assert len(halves[0]) == 90 and all(len(flat[0]) % flat[4] == 0 for flat in first + second)


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    """Where numba finds no writable cache folder, `cache=True` raises; `_jit` then compiles uncached."""
    njit = numba.njit

    def njit_without_cache(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache)
    assert fusion._jit(lambda x: x + 1)(41) == 42


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

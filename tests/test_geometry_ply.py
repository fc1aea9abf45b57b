"""PLY point clouds: binary round trip, Open3D reads our files, atomic and refusing overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.errors import OutputPathError, SceneFormatError
from geo4d_studio.export.ply import read_ply, write_ply


def cloud(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 256, (n, 3)).astype(np.uint8)


def test_round_trip_and_open3d_reads_it(tmp_path):
    import open3d as o3d

    points, colors = cloud()
    path = write_ply(tmp_path / "c.ply", points, colors)
    assert path.stat().st_size == len(path.read_bytes().split(b"end_header\n")[0]) + 11 + 15 * 500
    back_points, back_colors = read_ply(path)
    assert np.array_equal(back_points, points) and np.array_equal(back_colors, colors)
    pcd = o3d.io.read_point_cloud(str(path))
    assert np.allclose(np.asarray(pcd.points), points)
    assert np.allclose(np.asarray(pcd.colors) * 255, colors)


def test_reads_open3d_ascii_output(tmp_path):
    import open3d as o3d

    points, colors = cloud(20)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    pcd.colors = o3d.utility.Vector3dVector(colors / 255.0)
    o3d.io.write_point_cloud(str(tmp_path / "a.ply"), pcd, write_ascii=True)
    back_points, back_colors = read_ply(tmp_path / "a.ply")
    assert np.allclose(back_points, points, atol=1e-6) and np.array_equal(back_colors, colors)


def test_overwrite_and_empty_cloud(tmp_path):
    points, colors = cloud(10)
    path = write_ply(tmp_path / "c.ply", points, colors)
    with pytest.raises(OutputPathError, match="already exists"):
        write_ply(path, points[:3], colors[:3])
    assert len(read_ply(path)[0]) == 10  # untouched
    write_ply(path, np.zeros((0, 3)), np.zeros((0, 3)), overwrite=True)
    assert read_ply(path)[0].shape == (0, 3)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_bad_files_name_the_problem(tmp_path):
    (tmp_path / "x.ply").write_bytes(b"not a ply")
    with pytest.raises(SceneFormatError, match="x.ply: header"):
        read_ply(tmp_path / "x.ply")
    points, colors = cloud(10)
    data = write_ply(tmp_path / "t.ply", points, colors).read_bytes()
    (tmp_path / "t.ply").write_bytes(data[:-20])
    with pytest.raises(SceneFormatError, match="ends early"):
        read_ply(tmp_path / "t.ply")

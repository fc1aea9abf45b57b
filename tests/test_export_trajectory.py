"""Trajectory files: round trips for CSV / JSON / NPZ / TUM, overwrite protection, malformed input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geo4d_studio.errors import Geo4DError, OutputPathError, SceneFormatError
from geo4d_studio.export.trajectory_io import CSV_COLUMNS, read_trajectory, write_trajectory
from geo4d_studio.trajectory import Trajectory


def make_trajectory(n: int = 12, seed: int = 0) -> Trajectory:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    poses[:, :3, 3] = rng.uniform(-0.5, 0.8, (n, 3))
    lost = np.zeros(n, dtype=bool)
    lost[[i for i in (3, 7) if i < n]] = True
    poses[lost] = np.nan
    width = rng.uniform(0.0, 0.08, n).astype(np.float32)
    width[lost] = np.nan
    return Trajectory(
        timestamps=np.arange(n) * 0.1 + 1e-3,
        poses=poses,
        gripper_width=width,
        confidence=np.where(lost, 0.0, rng.uniform(0.3, 1.0, n)),
        frames=np.arange(n) * 2 + 5,
        lost=lost,
        source_view=["cam01+cam02" if i % 2 else "cam00" for i in range(n)],
        metadata={
            "scene": "pick.h5",
            "cameras": ["cam00", "cam01"],
            "params": {"steps": 25, "array": np.ones(2)},
        },
    )


def assert_same(a: Trajectory, b: Trajectory, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(a.timestamps, b.timestamps, atol=atol)
    np.testing.assert_allclose(a.poses, b.poses, atol=atol)  # NaN positions compare equal
    np.testing.assert_allclose(a.gripper_width, b.gripper_width, atol=atol)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=atol)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.lost, b.lost)
    assert a.source_view == b.source_view


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npz"])
def test_round_trip_keeps_everything(tmp_path, suffix):
    traj = make_trajectory()
    path = write_trajectory(traj, tmp_path / f"traj{suffix}")
    back = read_trajectory(path)
    assert_same(traj, back)
    assert np.isnan(back.poses[3]).all() and back.lost[3]


def test_json_and_npz_carry_metadata_and_conventions(tmp_path):
    traj = make_trajectory()
    doc = json.loads(write_trajectory(traj, tmp_path / "t.json").read_text())
    assert doc["units"] == "m" and doc["quaternion_order"] == "xyzw"
    assert doc["frame_convention"] == "T_world_tool, OpenCV cameras, z-up world"
    assert doc["frames"][3]["position"] is None  # lost: null, not an invented pose
    assert read_trajectory(tmp_path / "t.json").metadata["params"]["array"] == [1.0, 1.0]
    back = read_trajectory(write_trajectory(traj, tmp_path / "t.npz"))
    assert back.metadata["cameras"] == ["cam00", "cam01"]
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        assert data["source_view"].dtype.kind == "U"


def test_csv_header_is_exact(tmp_path):
    path = write_trajectory(make_trajectory(), tmp_path / "t.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header[: len(CSV_COLUMNS)]) == CSV_COLUMNS
    assert header[len(CSV_COLUMNS) :] == ["lost", "source_view"]


@pytest.mark.parametrize("suffix", [".txt", ".tum"])
def test_tum_round_trip_omits_lost_frames(tmp_path, suffix):
    traj = make_trajectory()
    path = write_trajectory(traj, tmp_path / f"t{suffix}")
    rows = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == len(traj) - 2 and all(len(r) == 8 for r in rows)
    back = read_trajectory(path)
    kept = ~traj.lost
    np.testing.assert_allclose(back.timestamps, traj.timestamps[kept], atol=1e-9)
    np.testing.assert_allclose(back.poses, traj.poses[kept], atol=1e-8)


def test_quaternions_are_xyzw(tmp_path):
    traj = make_trajectory(n=1)
    traj.poses[0, :3, :3] = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    header, first = write_trajectory(traj, tmp_path / "q.csv").read_text().splitlines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    q = np.array([float(row[k]) for k in ("qx", "qy", "qz", "qw")])
    np.testing.assert_allclose(np.abs(q), [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npz", ".tum"])
def test_existing_file_is_not_overwritten(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    path.write_text("keep me")
    with pytest.raises(OutputPathError, match="already exists"):
        write_trajectory(make_trajectory(), path)
    assert path.read_text() == "keep me"
    write_trajectory(make_trajectory(), path, overwrite=True)
    assert len(read_trajectory(path)) in (10, 12)


def test_unwritable_and_unknown_paths(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        write_trajectory(make_trajectory(), tmp_path / "missing" / "t.csv")
    with pytest.raises(Geo4DError, match="suffix"):
        write_trajectory(make_trajectory(), tmp_path / "t.xyz")
    assert list(tmp_path.iterdir()) == []


def test_malformed_files_name_file_and_field(tmp_path):
    bad_header = tmp_path / "a.csv"
    bad_header.write_text("t,x,y\n0,1,2\n")
    with pytest.raises(SceneFormatError, match="a.csv: header"):
        read_trajectory(bad_header)
    path = write_trajectory(make_trajectory(), tmp_path / "b.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[1], "abc", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(SceneFormatError, match="b.csv: line 3: x"):
        read_trajectory(path)
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(SceneFormatError, match="c.json: format"):
        read_trajectory(tmp_path / "c.json")
    with pytest.raises(SceneFormatError, match="no such file"):
        read_trajectory(tmp_path / "none.npz")


def test_zero_quaternion_is_a_format_error(tmp_path):
    path = tmp_path / "z.tum"
    path.write_text("0.0 1 2 3 0 0 0 0\n")
    with pytest.raises(SceneFormatError, match="z.tum: qx,qy,qz,qw: invalid quaternion"):
        read_trajectory(path)

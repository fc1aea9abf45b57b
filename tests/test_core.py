"""Atomic writes, the results file, Trajectory checks and the CLI entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from geo4d_studio.atomic import atomic_path
from geo4d_studio.cli import main
from geo4d_studio.errors import OutputPathError, SceneFormatError
from geo4d_studio.generation import (
    Generation,
    list_generations,
    load_generation,
    results_path_for,
    save_generation,
)
from geo4d_studio.trajectory import Trajectory


def test_atomic_write_renames_into_place_and_refuses_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(OutputPathError, match="already exists"), atomic_path(target):
        pass
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("two")
    assert target.read_text() == "two"


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("kept")
    with pytest.raises(RuntimeError), atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("case", ["directory", "missing_parent"])
def test_atomic_write_bad_targets(tmp_path, case):
    target = tmp_path if case == "directory" else tmp_path / "nope" / "out.txt"
    with pytest.raises(OutputPathError, match="directory"), atomic_path(target):
        pass


def _generation(frames: int = 3, h: int = 6, w: int = 8, seed: int = 0) -> Generation:
    rng = np.random.default_rng(seed)
    pm = rng.uniform(0.1, 1.5, (frames, h, w, 3)).astype(np.float32)
    return Generation(
        id="",
        ref_camera="front",
        other_camera="left",
        start_frame=4,
        frame_indices=np.arange(5, 5 + frames),
        timestamps=np.arange(5, 5 + frames) / 10.0,
        rgb_ref=rng.integers(0, 255, (frames, h, w, 3), dtype=np.uint8),
        rgb_other=rng.integers(0, 255, (frames, h, w, 3), dtype=np.uint8),
        depth_ref=pm[..., 2].copy(),
        pointmap_ref=pm,
        pointmap_other_in_ref=pm + 0.01,
        pointmap_other=pm - 0.01,
        depth_other=pm[..., 2] - 0.01,
        K_ref=np.eye(3),
        K_other=np.eye(3) * 2,
        T_world_ref=np.eye(4),
        T_world_other=np.eye(4),
        params={"steps": 25, "guidance": 2.5, "seed": seed},
    )


def test_results_file_round_trip_and_ids(tmp_path):
    results = results_path_for(tmp_path / "episode.h5")
    assert results.name == "episode.results.h5"
    first, second = _generation(seed=1), _generation(seed=2)
    assert save_generation(results, first) == "gen-0001"
    assert save_generation(results, second) == "gen-0002"
    summaries = list_generations(results)
    assert [s["id"] for s in summaries] == ["gen-0001", "gen-0002"]
    assert summaries[1]["params"]["seed"] == 2
    loaded = load_generation(results, "gen-0002")
    for name in ("rgb_ref", "pointmap_other_in_ref", "depth_other", "frame_indices", "K_other"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(second, name))
    assert loaded.frame_slot(6) == 1 and loaded.frame_slot(4) is None
    with pytest.raises(SceneFormatError, match="gen-0009"):
        load_generation(results, "gen-0009")


def test_results_file_rejects_foreign_file_without_touching_it(tmp_path):
    results = tmp_path / "episode.results.h5"
    results.write_bytes(b"not hdf5 at all")
    with pytest.raises(SceneFormatError, match="episode.results.h5"):
        save_generation(results, _generation())
    assert results.read_bytes() == b"not hdf5 at all"


def test_trajectory_checks_shapes():
    n = 4
    ok = dict(
        timestamps=np.arange(n),
        poses=np.tile(np.eye(4), (n, 1, 1)),
        gripper_width=np.zeros(n),
        confidence=np.ones(n),
        frames=np.arange(n),
        lost=np.zeros(n, bool),
        source_view=["a"] * n,
    )
    traj = Trajectory(**ok)
    assert len(traj) == n and traj.positions.shape == (n, 3)
    with pytest.raises(ValueError, match="poses"):
        Trajectory(**{**ok, "poses": np.zeros((n, 3, 4))})


def test_cli_version_and_unknown_command_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "geo4d-studio" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["info"])  # FILE is required
    assert exc.value.code == 2


def test_help_imports_no_heavy_packages():
    code = (
        "import sys; from geo4d_studio.cli import build_parser; build_parser().format_help();"
        "heavy = {'torch', 'open3d', 'pyvista', 'PySide6', 'diffusers', 'pybullet'} & set(sys.modules);"
        "print(sorted(heavy)); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_atomic_write_gives_usual_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_into_unwritable_place_is_a_clear_error():
    with pytest.raises(OutputPathError, match="/proc"), atomic_path("/proc/geo4d-test.txt"):
        pass

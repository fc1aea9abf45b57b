"""`geo4d-studio make-sample-data`: argument errors, file naming, parallel workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo4d_studio.cli import main
from geo4d_studio.scene import open_scene

TINY = ["--cameras", "1", "--size", "24x32", "--frames", "12", "--fps", "2"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; argparse errors (SystemExit) count as their exit code."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "120by160"], "--size '120by160': expected HxW"),
        (["--size", "8x8"], "must be 16..2048 pixels"),
        (["--task", "fold_laundry"], "invalid choice: 'fold_laundry'"),
        (["--episodes", "0"], "0 must be >= 1"),
        (["--frames", "12", "--fps", "10"], "the task needs at least"),
    ],
)
def test_argument_errors_exit_2(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    code, output = run_cli(["make-sample-data", "--out", str(tmp_path), *args], capsys)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys) -> None:
    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("x")
    code, output = run_cli(["make-sample-data", "--out", str(not_a_dir), *TINY], capsys)
    assert code == 2 and f"{not_a_dir}: is a file, expected an output directory" in output


def test_existing_episode_needs_overwrite(tmp_path: Path, capsys) -> None:
    (tmp_path / "push_object_s0007.h5").write_bytes(b"old")
    argv = ["make-sample-data", "--task", "push_object", "--seed", "7", "--out", str(tmp_path), *TINY]
    code, output = run_cli(argv, capsys)
    assert code == 2 and "already exists (pass --overwrite to replace it)" in output
    assert (tmp_path / "push_object_s0007.h5").read_bytes() == b"old"


@pytest.mark.slow
def test_parallel_workers_write_seeded_episodes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "new" / "dir"
    argv = ["make-sample-data", "--task", "push_object", "--episodes", "2", "--seed", "3", "--workers", "2"]
    code, output = run_cli([*argv, "--out", str(out), *TINY], capsys)
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["push_object_s0003.h5", "push_object_s0004.h5"]
    assert "2 episodes, 24 images" in output
    with open_scene(out / "push_object_s0004.h5") as scene:
        assert scene.num_frames == 12 and scene.camera_names == ["cam00"] and scene.task == "push_object"
        assert "seed 4" in scene.source

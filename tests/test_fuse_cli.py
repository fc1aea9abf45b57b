"""`geo4d-studio fuse` end to end on a shipped sample episode."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from geo4d_studio.cli import main
from geo4d_studio.export.ply import read_ply


def test_fuse_writes_cloud_and_prints_count(sample_path, tmp_path, capsys):
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        first, second = scene.camera_names[:2]
        expected = sum(np.count_nonzero(scene.depth(name, 1) > 0) for name in (first, second))
    out = tmp_path / "cloud.ply"
    assert (
        main(["fuse", str(sample_path), "--frame", "1", "--cameras", f"{first},{second}", "--out", str(out)])
        == 0
    )
    assert f"{expected} points" in capsys.readouterr().out
    points, colors = read_ply(out)
    assert points.shape == (expected, 3) and colors.shape == (expected, 3)
    assert (
        main(["fuse", str(sample_path), "--frame", "1", "--voxel", "0.01", "--out", str(out), "--overwrite"])
        == 0
    )
    assert 0 < len(read_ply(out)[0]) < expected * 2


def test_fuse_user_errors_are_one_line(sample_path, tmp_path, capsys):
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        count = scene.num_frames
    out = tmp_path / "cloud.ply"
    assert main(["fuse", str(sample_path), "--frame", str(count), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"frame {count} is out of range" in err and f"has {count} frames" in err
    assert not out.exists()
    assert main(["fuse", str(sample_path), "--frame", "0", "--cameras", "nope", "--out", str(out)]) == 2
    assert "no camera named nope" in capsys.readouterr().err
    assert main(["fuse", str(sample_path), "--frame", "0", "--voxel", "1e-12", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(sample_path) in err and "too small for the extent" in err and not out.exists()
    assert main(["fuse", str(sample_path), "--frame", "0", "--out", str(tmp_path / "missing" / "c.ply")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["fuse", str(sample_path), "--frame", "0", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    out.write_bytes(b"keep")
    assert main(["fuse", str(sample_path), "--frame", "0", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"keep"


def test_fuse_console_script_missing_file(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "geo4d_studio",
            "fuse",
            str(tmp_path / "none.h5"),
            "--frame",
            "0",
            "--out",
            str(tmp_path / "c.ply"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "none.h5" in result.stderr

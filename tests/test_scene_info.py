"""`geo4d-studio info`: the report's numbers, JSON output, and exit code 2 with one line for bad files."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from geo4d_studio.cli import main
from geo4d_studio.scene.synthetic import intrinsics, make_synthetic_scene


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory):
    return make_synthetic_scene(
        tmp_path_factory.mktemp("info") / "box.h5", cameras=3, frames=6, size=(30, 40), depth_scale=1e-4
    )


def test_text_report(scene_path, capsys):
    assert main(["info", str(scene_path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    K = intrinsics(30, 40)
    assert "  task:     synthetic box" in out and "  source:   synthetic" in out
    assert "  frames:   6 at 10 fps, 0.50 s" in out
    assert "  cameras:  3" in out
    fx_fy = f"{K[0, 0]:8.2f} {K[1, 1]:8.2f}"
    row = f"    cam2             40x30 {fx_fy}    20.00    15.00  static  yes   uint16 x 0.0001 m"
    assert row in out.splitlines()
    assert "  robot:    ee_pose yes, gripper_width yes, gripper_mesh yes" in out
    assert out.rstrip().endswith("validation: valid (metadata checked)")


def test_json_report(scene_path, capsys):
    assert main(["info", str(scene_path), "--json", "--full"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["valid"] and info["checked"] == "every frame" and info["problems"] == [] == info["warnings"]
    assert (info["frames"], info["fps"], info["duration_s"]) == (6, 10.0, pytest.approx(0.5))
    assert info["file_size_bytes"] == scene_path.stat().st_size
    assert [c["name"] for c in info["cameras"]] == ["cam0", "cam1", "cam2"]
    cam = info["cameras"][1]
    assert (cam["width"], cam["height"], cam["cx"], cam["cy"], cam["static"]) == (40, 30, 20.0, 15.0, True)
    assert cam["fx"] == pytest.approx(intrinsics(30, 40)[0, 0]) and cam["depth_scale_m"] == pytest.approx(
        1e-4
    )


def test_moving_camera_and_warnings(tmp_path, capsys):
    path = tmp_path / "s.h5"
    shutil.copyfile(make_synthetic_scene(tmp_path / "src.h5", with_robot=False), path)
    with h5py.File(path, "r+") as h5:
        pose = h5["/cameras/cam1/T_world_cam"][()]
        del h5["/cameras/cam1/T_world_cam"]
        moving = np.repeat(pose[None], 5, axis=0)
        moving[:, 0, 3] += np.linspace(0, 0.1, 5)
        h5["/cameras/cam1/T_world_cam"] = moving
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [c["static"] for c in info["cameras"]] == [True, False]
    assert info["robot"] == {"ee_pose": False, "gripper_width": False, "gripper_mesh": False}
    assert "no robot ground truth (/robot/ee_pose)" in info["warnings"]


def test_invalid_metadata_exits_2_with_one_line(tmp_path, scene_path, capsys):
    path = tmp_path / "bad.h5"
    shutil.copyfile(scene_path, path)
    with h5py.File(path, "r+") as h5:
        h5["/cameras/cam0/K"][0, 0] = 0.0
        h5["/robot/gripper_width"][2] = np.nan
    assert main(["info", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1
    first = f"{path}: /cameras/cam0/K: focal length fx is 0, expected > 0"
    assert err == f"geo4d-studio: error: {first} (and 1 more problems)\n"
    assert f"    - {path}: /robot/gripper_width: 1 NaN/inf values" in out


def test_full_scan_finds_damaged_frame_that_metadata_check_misses(tmp_path, capsys):
    path = make_synthetic_scene(tmp_path / "s.h5", frames=5)
    with h5py.File(path, "r+") as h5:
        chunk = h5["/cameras/cam1/rgb"].id.get_chunk_info(3)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset + 10)
        f.write(b"\x00\xff" * 8)
    assert main(["info", str(path)]) == 0
    capsys.readouterr()
    assert main(["info", str(path), "--full", "--json"]) == 2
    out, err = capsys.readouterr()
    problems = json.loads(out)["problems"]
    assert len(problems) == 1 and problems[0].startswith(
        f"{path}: /cameras/cam1/rgb: frame 3: cannot be read"
    )
    assert err.startswith(f"geo4d-studio: error: {path}: /cameras/cam1/rgb: frame 3") and err.count("\n") == 1


@pytest.mark.parametrize("name", ["missing.h5", "."])
def test_missing_file_or_directory(tmp_path, capsys, name):
    assert main(["info", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geo4d-studio: error: ") and ": file: " in err and err.count("\n") == 1


def test_shipped_samples_are_valid(sample_paths, capsys):
    for path in sample_paths:
        assert main(["info", str(path), "--full"]) == 0, capsys.readouterr().err
        assert "validation: valid (every frame checked)" in capsys.readouterr().out

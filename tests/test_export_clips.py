"""Exporting a generation: comparison MP4, HDF5 scene, PLY clouds; plus the track / export CLI."""

from __future__ import annotations

import shutil

import imageio_ffmpeg
import numpy as np
import pytest

from geo4d_studio.cli import main
from geo4d_studio.errors import OutputPathError, SceneFormatError
from geo4d_studio.export.clips import (
    colorize_depth,
    write_comparison_mp4,
    write_generation_ply,
    write_generation_scene,
)
from geo4d_studio.export.ply import read_ply
from geo4d_studio.export.trajectory_io import read_trajectory
from geo4d_studio.generation import results_path_for, save_generation
from geo4d_studio.paths import SAMPLE_DATA_DIR
from geo4d_studio.reference import recorded_clip
from geo4d_studio.scene import open_scene

PICK = SAMPLE_DATA_DIR / "pick_block_s0000.h5"
CLIP_FRAMES = [10, 12, 14, 16]


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    """A copy of the sample episode with one saved generation (gen-0001) in its results file."""
    path = tmp_path_factory.mktemp("episode") / "pick.h5"
    shutil.copyfile(PICK, path)
    with open_scene(path) as scene:
        clip = recorded_clip(scene, "cam02", "cam03", 8, CLIP_FRAMES)
    assert save_generation(results_path_for(path), clip) == "gen-0001"
    with open_scene(path) as scene:
        yield scene, clip


def test_colorize_depth_is_ordered_and_blacks_out_invalid():
    depth = np.array([[0.0, 0.5, 1.0, 1.5]], dtype=np.float32)
    rgb = colorize_depth(depth, 0.5, 1.5)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [253, 231, 37] and rgb[0, 3].tolist() == [68, 1, 84]


def test_mp4_has_recorded_and_generated_side_by_side(episode, tmp_path):
    scene, clip = episode
    path = write_comparison_mp4(scene, clip, tmp_path / "ref.mp4", "ref")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    frames = list(reader)
    h, w = scene.cameras["cam02"].height, scene.cameras["cam02"].width
    assert meta["size"] == (2 * w, 2 * h)
    assert len(frames) == len(CLIP_FRAMES)
    first = np.frombuffer(frames[0], np.uint8).reshape(2 * h, 2 * w, 3).astype(int)
    recorded = scene.rgb("cam02", CLIP_FRAMES[0]).astype(int)
    assert np.abs(first[:h, :w] - recorded).mean() < 12  # lossy codec, same picture
    assert np.abs(first[:h, w:] - recorded).mean() < 12  # the "generation" is the recording here
    with pytest.raises(OutputPathError, match="already exists"):
        write_comparison_mp4(scene, clip, path, "other")


def test_generation_opens_as_a_scene(episode, tmp_path):
    scene, clip = episode
    path = write_generation_scene(scene, clip, tmp_path / "gen.h5")
    with open_scene(path) as exported:
        assert exported.camera_names == ["cam02", "cam03"]
        assert exported.num_frames == len(CLIP_FRAMES)
        np.testing.assert_array_equal(exported.rgb("cam03", 2), clip.rgb_other[2])
        np.testing.assert_allclose(exported.depth("cam02", 1), clip.depth_ref[1], atol=1e-6)
        np.testing.assert_allclose(exported.cameras["cam03"].pose(0), clip.T_world_other)


def test_ply_one_frame_and_sequence(episode, tmp_path):
    scene, clip = episode
    (single,) = write_generation_ply(scene, clip, tmp_path / "one.ply", indices=[1])
    points, colors = read_ply(single)
    n_valid = int((clip.depth_ref[1] > 0).sum() + (clip.depth_other[1] > 0).sum())
    assert points.shape == (n_valid, 3) and colors.shape == (n_valid, 3)
    assert np.abs(points[:, 2]).max() < 3.0  # world metres, not millimetres or camera depth
    paths = write_generation_ply(scene, clip, tmp_path / "seq.ply")
    assert [p.name for p in paths] == [f"seq_{f:04d}.ply" for f in CLIP_FRAMES]
    with pytest.raises(OutputPathError):
        write_generation_ply(scene, clip, tmp_path / "seq.ply")


def test_generation_with_nan_is_not_exported(episode, tmp_path):
    scene, clip = episode
    broken = recorded_clip(scene, "cam02", "cam03", 8, CLIP_FRAMES[:2])
    broken.id = "gen-0099"
    broken.depth_other[1, 0, 0] = np.nan
    with pytest.raises(SceneFormatError, match="gen-0099/depth_other: frame 1"):
        write_generation_scene(scene, broken, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_cli_track_recorded_writes_and_reports(episode, tmp_path, capsys):
    scene, _ = episode
    out = tmp_path / "traj.csv"
    args = [
        "track", str(scene.path), "--views", "cam02,cam03", "--frames", "0:8:2", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    report = capsys.readouterr().out
    assert "ATE" in report and "0 lost" in report
    traj = read_trajectory(out)
    assert traj.frames.tolist() == [0, 2, 4, 6]
    assert main(args) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_cli_track_generation_and_export(episode, tmp_path, capsys):
    scene, _ = episode
    out = tmp_path / "gen.json"
    assert main(["track", str(scene.path), "--source", "gen-0001", "--out", str(out), "--quiet"]) == 0
    assert read_trajectory(out).frames.tolist() == CLIP_FRAMES
    mp4 = tmp_path / "clip.mp4"
    assert (
        main(["export", str(scene.path), "--generation", "gen-0001", "--what", "mp4", "--out", str(mp4)]) == 0
    )
    assert mp4.stat().st_size > 1000
    ply = tmp_path / "f.ply"
    export_ply = ["export", str(scene.path), "--generation", "gen-0001", "--what", "ply", "--frame", "12"]
    assert main([*export_ply, "--out", str(ply)]) == 0 and ply.is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--source", "gen-0042"], "gen-0042: no such generation"),
        (["--frames", "a:b"], "--frames 'a:b'"),
        (["--views", "cam99"], "no camera 'cam99'"),
    ],
)
def test_cli_track_bad_input_exits_2(episode, tmp_path, capsys, extra, message):
    scene, _ = episode
    assert main(["track", str(scene.path), "--out", str(tmp_path / "t.csv"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "t.csv").exists()


def test_cli_export_needs_generation_for_mp4(episode, tmp_path, capsys):
    scene, _ = episode
    assert main(["export", str(scene.path), "--what", "mp4", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "needs --generation" in capsys.readouterr().err


def test_cli_export_recorded_ply(episode, tmp_path):
    scene, _ = episode
    ply = tmp_path / "rec.ply"
    assert main(["export", str(scene.path), "--what", "ply", "--frame", "3", "--out", str(ply)]) == 0
    points, colors = read_ply(ply)
    assert len(points) == sum(int((scene.depth(c, 3) > 0).sum()) for c in scene.camera_names)
    assert (
        main(["export", str(scene.path), "--what", "ply", "--frame", "64", "--out", str(tmp_path / "x.ply")])
        == 2
    )

"""`geo4d-studio import`: the CLI face of the robomimic and RLBench importers."""

from __future__ import annotations

from geo4d_studio.cli import main
from geo4d_studio.scene import open_scene

pytest_plugins = ["tests.test_importers"]


def test_import_rlbench_then_refuse_overwrite(rlbench_episode, tmp_path, capsys):
    episode, views = rlbench_episode
    out = tmp_path / "rl.h5"
    assert main(["import", "rlbench", str(episode), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with open_scene(out) as scene:
        assert set(scene.camera_names) == set(views)
    assert main(["import", "rlbench", str(episode), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_import_robomimic_with_camera_subset(robomimic_file, tmp_path, capsys):
    src, calib, views = robomimic_file
    first = sorted(views)[0]
    out = tmp_path / "rm.h5"
    args = ["import", "robomimic", str(src), str(out), "--calibration", str(calib), "--cameras", first]
    assert main([*args, "--flip-vertical"]) == 0
    with open_scene(out) as scene:
        assert scene.camera_names == [first]
    assert main(["import", "robomimic", str(src), str(tmp_path / "x.h5"), "--calibration", str(src)]) == 2
    assert str(src) in capsys.readouterr().err

"""`geo4d-studio generate` end to end, and the pipeline on a shipped sample episode."""

from __future__ import annotations

import os
import shutil
import signal
import threading

import numpy as np
import pytest
import torch

from geo4d_studio.cli import main
from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.pipeline import Geo4DPipeline
from geo4d_studio.generation import list_generations, load_generation, save_generation
from geo4d_studio.interrupts import first_interrupt_sets
from geo4d_studio.scene import open_scene
from geo4d_studio.scene.synthetic import make_synthetic_scene

CFG = ModelConfig.tiny()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    return Geo4DPipeline.from_model_config(CFG).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture
def scene_path(tmp_path):
    return make_synthetic_scene(tmp_path / "box.h5", cameras=2, frames=6, size=(24, 32))


def _generate(scene_path, model_dir, *extra: str) -> int:
    args = ["generate", str(scene_path), "--ref", "cam0", "--other", "cam1", "--frame", "1", "--steps", "2"]
    return main([*args, "--model", str(model_dir), "--device", "cpu", *extra])


def test_generate_saves_beside_the_recording(scene_path, model_dir, capsys):
    assert _generate(scene_path, model_dir, "--seed", "4") == 0
    results = scene_path.with_name("box.results.h5")
    assert capsys.readouterr().out.split() == ["gen-0001", str(results)]
    assert _generate(scene_path, model_dir) == 0
    assert capsys.readouterr().out.split()[0] == "gen-0002"
    assert [g["id"] for g in list_generations(results)] == ["gen-0001", "gen-0002"]
    gen = load_generation(results, "gen-0001")
    np.testing.assert_array_equal(gen.frame_indices, [2, 3, 4])
    assert gen.rgb_ref.shape == (3, 24, 32, 3) and gen.pointmap_other.shape == (3, 24, 32, 3)
    assert gen.params["seed"] == 4 and gen.params["steps"] == 2 and gen.params["model"] == str(model_dir)
    assert _generate(scene_path, model_dir, "--frames", "9") == 0  # the recording holds only 4 of them
    captured = capsys.readouterr()
    assert "the recording ends at frame 5; 4 of the 9 generated frames are kept" in captured.err
    assert load_generation(results, captured.out.split()[0]).frame_indices.tolist() == [2, 3, 4, 5]


def test_generate_user_errors_are_one_line(scene_path, model_dir, tmp_path, capsys):
    assert _generate(scene_path, model_dir, "--results", str(tmp_path / "nowhere" / "r.h5")) == 2
    err = capsys.readouterr().err
    assert "does not exist; choose another file with --results PATH" in err and err.count("\n") == 1
    assert main(["generate", str(scene_path), "--ref", "cam9", "--other", "cam1", "--frame", "0",
                 "--model", str(model_dir), "--device", "cpu"]) == 2  # fmt: skip
    assert "--ref 'cam9': no such camera (cameras: cam0, cam1)" in capsys.readouterr().err
    broken = shutil.copytree(model_dir, tmp_path / "broken")
    (broken / "unet" / "config.json").unlink()
    assert _generate(scene_path, broken) == 2
    assert "unet/config.json: missing" in capsys.readouterr().err
    assert not scene_path.with_name("box.results.h5").exists()


def test_a_first_ctrl_c_sets_the_cancel_flag_and_a_second_one_raises():
    previous = signal.getsignal(signal.SIGINT)
    cancelled = threading.Event()
    with pytest.raises(KeyboardInterrupt), first_interrupt_sets(cancelled):
        os.kill(os.getpid(), signal.SIGINT)
        assert cancelled.wait(2.0)
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(2.0)  # the handler runs here and raises
    assert signal.getsignal(signal.SIGINT) is previous


def test_pipeline_on_a_sample_episode(sample_path, model_dir, tmp_path):
    pipe = Geo4DPipeline.from_pretrained(model_dir, device="cpu")
    with open_scene(sample_path) as scene:
        ref, other = scene.camera_names[:2]
        cam = scene.cameras[ref]
        gen = pipe(scene, ref, other, 10, steps=2, seed=0)
    assert gen.rgb_ref.shape == (CFG.num_future_frames, cam.height, cam.width, 3)
    np.testing.assert_array_equal(gen.frame_indices, 10 + CFG.frame_stride * np.arange(1, 4))
    gen_id = save_generation(tmp_path / "sample.results.h5", gen)
    back = load_generation(tmp_path / "sample.results.h5", gen_id)
    np.testing.assert_array_equal(back.pointmap_other_in_ref, gen.pointmap_other_in_ref)
    assert np.isfinite(back.depth_other).all()

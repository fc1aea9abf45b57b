"""Sampler, pipeline on recordings, checkpoint folders (save/load/errors), SVD initialisation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from geo4d_studio.diffusion.checkpoint import WEIGHTS_NAME
from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.cuda_graph import GraphCache
from geo4d_studio.diffusion.normalize import model_to_pointmap, scale_intrinsics
from geo4d_studio.diffusion.pipeline import Geo4DPipeline, model_inputs
from geo4d_studio.diffusion.sampler import (
    GenerationCancelled,
    guidance_ramp,
    guided_denoise,
    karras_sigmas,
    sample_euler,
)
from geo4d_studio.errors import CheckpointError, Geo4DError
from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.crossview import pointmap_to_frame
from geo4d_studio.scene import open_scene
from geo4d_studio.scene.synthetic import make_synthetic_scene

CFG = ModelConfig.tiny()


@pytest.fixture(scope="module")
def pipe() -> Geo4DPipeline:
    torch.manual_seed(0)
    return Geo4DPipeline.from_model_config(CFG).to("cpu")


@pytest.fixture(scope="module")
def model_dir(pipe, tmp_path_factory):
    return pipe.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory):
    return make_synthetic_scene(
        tmp_path_factory.mktemp("scene") / "box.h5", cameras=3, frames=6, size=(24, 32)
    )


def _conditions(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, CFG.view_channels, *CFG.latent_size, generator=g) for _ in range(2)]


def test_karras_sigmas_and_guidance_ramp():
    sigmas = karras_sigmas(25, 0.002, 80.0, 7.0)
    assert sigmas.shape == (26,)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[24] == pytest.approx(0.002) and sigmas[25] == 0
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    np.testing.assert_allclose(guidance_ramp(4, 1.0, 2.5).numpy(), [1.0, 1.5, 2.0, 2.5])
    assert guidance_ramp(1, 1.0, 2.5).tolist() == [2.5]


def test_guidance_batches_equal_separate_evaluations(pipe):
    x_n, x_m = (torch.randn(1, 3, CFG.view_channels, *CFG.latent_size) for _ in range(2))
    c_n, c_m = _conditions()
    scales = guidance_ramp(3, 1.0, 3.0)
    sigma = torch.tensor(2.0)
    from geo4d_studio.diffusion.edm import edm_denoise

    with torch.no_grad():
        g_n, g_m = guided_denoise(pipe.unet, x_n, x_m, c_n, c_m, sigma, scales, 1.0)
        cond = edm_denoise(pipe.unet, x_n, x_m, c_n, c_m, sigma)
        uncond = edm_denoise(pipe.unet, x_n, x_m, torch.zeros_like(c_n), torch.zeros_like(c_m), sigma)
    w = scales.reshape(1, -1, 1, 1, 1)
    torch.testing.assert_close(g_n, uncond[0] + w * (cond[0] - uncond[0]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_m, uncond[1] + w * (cond[1] - uncond[1]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_n[:, 0], cond[0][:, 0], atol=1e-5, rtol=1e-5)  # frame 1: scale 1


def test_sampler_is_reproducible_and_cancellable(pipe):
    c_n, c_m = _conditions()

    def run(seed: int, callback=None):
        gen = torch.Generator().manual_seed(seed)
        return sample_euler(pipe.unet, c_n, c_m, CFG, steps=3, generator=gen, callback=callback)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0])
    assert a[0].shape == (1, CFG.num_future_frames, CFG.view_channels, *CFG.latent_size)
    calls = []

    def stop_at_two(step, num_steps, preview):
        calls.append((step, num_steps, preview[0].shape))
        return step < 2

    with pytest.raises(GenerationCancelled):
        run(7, stop_at_two)
    assert [c[:2] for c in calls] == [(1, 3), (2, 3)]
    assert calls[0][2] == a[0].shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_sampling_matches_eager_and_is_reused():
    torch.manual_seed(0)
    gpu = Geo4DPipeline.from_model_config(CFG).to("cuda", torch.float32)
    c_n, c_m = (c.cuda() for c in _conditions())
    cache = GraphCache()

    def run(graphs, seed=3):
        gen = torch.Generator().manual_seed(seed)
        return sample_euler(gpu.unet, c_n, c_m, CFG, steps=4, generator=gen, graphs=graphs)

    eager, graphed = run(None), run(cache)
    scratch = [torch.full((n,), 1e3, device="cuda") for n in (8, 1 << 16) for _ in range(64)]  # reuse freed
    again, other_seed = run(cache), run(cache, seed=4)
    del scratch
    assert len(cache._graphs) == 1 and cache._graphs.popitem()[1] is not None  # captured once, reused
    for result in (graphed, again):
        torch.testing.assert_close(result[0], eager[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(result[1], eager[1], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(other_seed[0], graphed[0])  # new noise flows through the captured buffers


def test_model_inputs_cross_view_target_is_the_geometry_transform(scene_path):
    with open_scene(scene_path) as scene:
        views = model_inputs(scene, "cam0", "cam1", [0, 2], CFG)
        assert views["rgb_n"].shape == (2, 3, *CFG.image_size)
        assert views["mask_m"].shape == (2, 1, *CFG.image_size)
        cam_n, cam_m = scene.cameras["cam0"], scene.cameras["cam1"]
        K_m = scale_intrinsics(cam_m.K, (cam_m.height, cam_m.width), CFG.image_size)
        recorded = torch.from_numpy(scene.depth("cam1", 2).copy())
        depth = torch.nn.functional.interpolate(
            recorded[None, None], size=CFG.image_size, mode="nearest-exact"
        )[0, 0].numpy()
        depth[depth > CFG.max_depth_m] = 0.0  # beyond the model's range: invalid
        expected = pointmap_to_frame(depth_to_pointmap(depth, K_m), cam_m.pose(2), cam_n.pose(2))
    got = model_to_pointmap(views["pm_m_in_n"][1], CFG, own_frame=False)
    valid = depth > 0
    assert valid.mean() > 0.5
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-5)
    assert not got[~valid].any()


def test_pipeline_generation_fields(pipe, scene_path):
    with open_scene(scene_path) as scene:
        gen = pipe(scene, "cam0", "cam1", 1, steps=2, seed=3)
        T_n, T_m = scene.cameras["cam0"].pose(1), scene.cameras["cam1"].pose(1)
    F = CFG.num_future_frames
    np.testing.assert_array_equal(gen.frame_indices, [2, 3, 4])
    np.testing.assert_allclose(gen.timestamps, [0.2, 0.3, 0.4])
    assert gen.rgb_ref.shape == gen.rgb_other.shape == (F, 24, 32, 3) and gen.rgb_ref.dtype == np.uint8
    for name in ("pointmap_ref", "pointmap_other_in_ref", "pointmap_other"):
        assert getattr(gen, name).shape == (F, 24, 32, 3) and getattr(gen, name).dtype == np.float32
    expected_other = pointmap_to_frame(gen.pointmap_other_in_ref, T_n, T_m)
    valid = gen.depth_other > 0
    np.testing.assert_allclose(gen.pointmap_other[valid], expected_other[valid], atol=1e-5)
    np.testing.assert_array_equal(gen.depth_ref, np.maximum(gen.pointmap_ref[..., 2], 0))
    np.testing.assert_array_equal(gen.T_world_ref, T_n)
    assert gen.params["steps"] == 2 and gen.params["seed"] == 3 and gen.params["device"] == "cpu"
    assert gen.params["elapsed_s"] > 0


def test_pipeline_clips_at_the_end_and_names_bad_requests(pipe, scene_path):
    with open_scene(scene_path) as scene:
        gen = pipe(scene, "cam0", "cam2", 3, steps=1)
        np.testing.assert_array_equal(gen.frame_indices, [4, 5])
        assert gen.rgb_ref.shape[0] == 2
        with pytest.raises(Geo4DError, match="frame 5.*too short to predict frame 6"):
            pipe(scene, "cam0", "cam1", 5, steps=1)
        with pytest.raises(Geo4DError, match="--ref 'nope': no such camera"):
            pipe(scene, "nope", "cam1", 0, steps=1)
        with pytest.raises(Geo4DError, match="must differ"):
            pipe(scene, "cam1", "cam1", 0, steps=1)
        previews = []

        def cancel_after_one(step, num_steps, preview):
            previews.append(preview())
            return False

        with pytest.raises(GenerationCancelled):
            pipe(scene, "cam0", "cam1", 0, steps=3, callback_on_step_end=cancel_after_one)
        assert len(previews) == 1 and previews[0].shape == (3, *CFG.image_size, 3)


def test_save_load_gives_identical_generation(pipe, model_dir, scene_path):
    loaded = Geo4DPipeline.from_pretrained(model_dir, device="cpu")
    assert loaded.config == CFG
    with open_scene(scene_path) as scene:
        a = pipe(scene, "cam0", "cam1", 0, steps=2, seed=11)
        b = loaded(scene, "cam0", "cam1", 0, steps=2, seed=11)
    for name in ("rgb_ref", "rgb_other", "pointmap_ref", "pointmap_other_in_ref", "depth_other"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert b.params["model"] == str(model_dir)
    index = json.loads((model_dir / "model_index.json").read_text())
    assert index["unet"] == ["geo4d_studio.diffusion.unet", "MultiViewUNet"]


def test_fp16_save_halves_the_weights(pipe, model_dir, tmp_path):
    half = pipe.save_pretrained(tmp_path / "half", fp16=True)
    full_size = (model_dir / "unet" / WEIGHTS_NAME).stat().st_size
    half_size = (half / "unet" / WEIGHTS_NAME).stat().st_size
    assert half_size < 0.55 * full_size
    loaded = Geo4DPipeline.from_pretrained(half, device="cpu")
    assert loaded.dtype == torch.float32
    w = pipe.unet.conv_in.weight
    torch.testing.assert_close(loaded.unet.conv_in.weight, w.half().float())


def _copy_model(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("damage", "field", "problem"),
    [
        (lambda d: (d / "model_index.json").unlink(), "model_index.json", "missing"),
        (lambda d: (d / "unet" / "config.json").unlink(), "unet/config.json", "missing"),
        (
            lambda d: (d / "rgb_vae" / "config.json").write_text("{oops"),
            "rgb_vae/config.json",
            "unreadable JSON",
        ),
        (lambda d: (d / "unet" / WEIGHTS_NAME).unlink(), f"unet/{WEIGHTS_NAME}", "missing"),
        (
            lambda d: __import__("shutil").rmtree(d / "pointmap_vae"),
            "pointmap_vae/",
            "component folder missing",
        ),
        (
            lambda d: (d / "unet" / WEIGHTS_NAME).write_bytes(b"garbage"),
            f"unet/{WEIGHTS_NAME}",
            "not a readable",
        ),
    ],
)
def test_bad_checkpoint_folders_name_the_file(model_dir, tmp_path, damage, field, problem):
    broken = _copy_model(model_dir, tmp_path / "broken")
    damage(broken)
    with pytest.raises(CheckpointError, match=problem) as info:
        Geo4DPipeline.from_pretrained(broken, device="cpu")
    assert info.value.field == field
    assert str(broken) in str(info.value)


def test_pickle_weights_are_refused(model_dir, tmp_path):
    broken = _copy_model(model_dir, tmp_path / "pickled")
    weights = broken / "unet" / WEIGHTS_NAME
    torch.save(load_file(weights), broken / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(
        CheckpointError, match="pickle checkpoints are not loaded; convert to safetensors"
    ) as info:
        Geo4DPipeline.from_pretrained(broken, device="cpu")
    assert info.value.field == "unet/diffusion_pytorch_model.bin"


def test_wrong_tensor_shape_names_the_tensor(model_dir, tmp_path):
    broken = _copy_model(model_dir, tmp_path / "shapes")
    weights = broken / "unet" / WEIGHTS_NAME
    state = load_file(weights)
    state["conv_in.weight"] = torch.zeros(32, 12, 3, 3)
    save_file(state, weights)
    with pytest.raises(
        CheckpointError, match=r"shape \(32, 12, 3, 3\) does not match the model's \(32, 16, 3, 3\)"
    ) as info:
        Geo4DPipeline.from_pretrained(broken, device="cpu")
    assert info.value.field == f"unet/{WEIGHTS_NAME}: conv_in.weight"


def test_missing_folder_is_an_error_not_a_download(tmp_path):
    with pytest.raises(CheckpointError, match="no such model folder"):
        Geo4DPipeline.from_pretrained(tmp_path / "stabilityai" / "stable-video-diffusion-img2vid")


def test_bfloat16_pipeline_agrees_with_float32(model_dir, scene_path):
    """The reduced-precision path used on GPUs (exercised here on the CPU): float32 sampler state."""
    full = Geo4DPipeline.from_pretrained(model_dir, device="cpu")
    half = Geo4DPipeline.from_pretrained(model_dir, device="cpu", dtype=torch.bfloat16)
    with open_scene(scene_path) as scene:
        a = full(scene, "cam0", "cam1", 0, steps=3, seed=2)
        b = half(scene, "cam0", "cam1", 0, steps=3, seed=2)
    assert b.params["dtype"] == "bfloat16" and b.pointmap_ref.dtype == np.float32
    assert np.abs(a.rgb_ref.astype(int) - b.rgb_ref).mean() < 8.0
    both = (a.depth_ref > 0) & (b.depth_ref > 0)
    assert both.mean() > 0.5
    assert np.median(np.abs(a.pointmap_ref - b.pointmap_ref)[both]) < 0.05

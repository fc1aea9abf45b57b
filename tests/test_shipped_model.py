"""The shipped checkpoint in model/: safe format, size, and a real generation on a sample episode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geo4d_studio.paths import DEFAULT_MODEL_DIR

MAX_MODEL_BYTES = 60 * 2**20


def test_shipped_model_is_safetensors_fp16_and_small() -> None:
    from safetensors import safe_open

    files = [p for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".json", ".safetensors", ".md"}
    assert sum(p.stat().st_size for p in files) <= MAX_MODEL_BYTES
    index = json.loads((DEFAULT_MODEL_DIR / "model_index.json").read_text())
    for name in ("rgb_vae", "pointmap_vae", "unet"):
        assert name in index
        with safe_open(DEFAULT_MODEL_DIR / name / "diffusion_pytorch_model.safetensors", "pt") as f:
            dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        assert dtypes == {"F16"}, (name, dtypes)
    card = (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    assert "make-sample-data" in card and "cross-view" in card


def test_shipped_model_generates_on_a_sample_episode(sample_path: Path) -> None:
    import torch

    from geo4d_studio.diffusion.pipeline import Geo4DPipeline
    from geo4d_studio.scene import open_scene

    torch.set_num_threads(1)
    pipe = Geo4DPipeline.from_pretrained(DEFAULT_MODEL_DIR, device="cpu")
    cfg = pipe.config
    with open_scene(sample_path) as scene:
        ref, other = scene.camera_names[0], scene.camera_names[1]
        gen = pipe(scene, ref, other, start_frame=5, steps=2, seed=1)
        cam = scene.cameras[ref]
        h, w = cam.height, cam.width
    frames = cfg.num_future_frames
    assert list(gen.frame_indices) == [5 + cfg.frame_stride * (i + 1) for i in range(frames)]
    assert gen.rgb_ref.shape == gen.rgb_other.shape == (frames, h, w, 3)
    assert gen.rgb_ref.dtype == np.uint8
    for array in (gen.depth_ref, gen.pointmap_ref, gen.pointmap_other_in_ref, gen.depth_other):
        assert array.shape[:3] == (frames, h, w) and np.isfinite(array).all()
    valid = gen.depth_ref > 0
    assert valid.mean() > 0.2  # a trained model predicts geometry for much of the view
    assert 0.1 < float(np.median(gen.depth_ref[valid])) < cfg.max_depth_m
    assert gen.rgb_ref.std() > 5  # not a flat image


def test_shipped_autoencoders_reconstruct_the_recorded_future_closely(sample_path: Path) -> None:
    """`reconstruct` encodes and decodes the recorded future: the bound on what the denoiser can reach
    (depth within a few per cent, images far sharper than a generation can be asked for)."""
    import torch

    from geo4d_studio.diffusion.evaluate import clip_metrics
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline, future_frame_indices
    from geo4d_studio.scene import open_scene

    torch.set_num_threads(1)
    pipe = Geo4DPipeline.from_pretrained(DEFAULT_MODEL_DIR, device="cpu")
    cfg = pipe.config
    with open_scene(sample_path) as scene:
        ref, other = scene.camera_names[:2]
        clip = pipe.reconstruct(scene, ref, other, 10)
        assert np.array_equal(
            clip.frame_indices, future_frame_indices(scene, 10, cfg.num_future_frames, cfg.frame_stride)
        )
        assert clip.params["autoencoders_only"] and clip.rgb_ref.shape[1:3] == scene.rgb(ref, 0).shape[:2]
        scores = clip_metrics(scene, clip, cfg.max_depth_m)
    assert scores["psnr_n"] > 24 and scores["ssim_n"] > 0.85
    assert scores["absrel_n"] < 0.04 and scores["absrel_m"] < 0.07 and scores["delta1_m"] > 0.93

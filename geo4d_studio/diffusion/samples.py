"""Held-out samples during training: a picture and a few numbers for the phase being trained.

Each phase is shown on the first held-out item (cameras never trained on): the VAE phases as the
recorded frames over their reconstruction (RGB PSNR; pointmap median 3D error), the U-Net phase as a
generation from the item's condition frame with the weights being trained (25 Euler steps, seed 0) over
the recorded future (PSNR per view, AbsRel of view n's depth and of view m's depth in n's frame).
Pictures are rows of frames at the model's size; pointmaps are drawn as depth (z), near bright.
"""

from __future__ import annotations

import numpy as np
import torch

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.normalize import model_to_pointmap, model_to_rgb
from geo4d_studio.diffusion.vae import decode, encode, pointmap_reconstruction
from geo4d_studio.metrics.depth import abs_rel
from geo4d_studio.metrics.image import psnr

SAMPLE_STEPS = 25


def depth_picture(z: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """Depths (F, H, W) in metres → (F, H, W, 3) uint8 grey: z from 0 (white) to max_depth_m (dark);
    invalid pixels (z <= 0) black."""
    grey = np.where(z > 0, 255.0 - 200.0 * np.clip(z / cfg.max_depth_m, 0.0, 1.0), 0.0)
    return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=-1)


def picture(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of frames (F, H, W, 3) uint8 → one (rows·H, F·W, 3) image."""
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)


@torch.no_grad()
def rgb_vae_sample(
    vae: torch.nn.Module, item: dict[str, torch.Tensor]
) -> tuple[dict[str, float], np.ndarray]:
    """The RGB frames of both views of the model-space `item` (batch of 1) over their reconstruction."""
    vae.eval()
    frames = torch.cat([item["rgb_n"][0], item["rgb_m"][0]])
    truth, out = model_to_rgb(frames), model_to_rgb(decode(vae, encode(vae, frames)))
    return {"psnr": float(np.mean(psnr(truth, out)))}, picture([truth, out])


def pointmap_vae_sample(
    vae: torch.nn.Module, item: dict[str, torch.Tensor], cfg: ModelConfig
) -> tuple[dict[str, float], np.ndarray]:
    """The pointmaps of view n and of view m in n's frame of `item` (batch of 1), as depth, over their
    reconstruction; the median 3D error over the recorded valid pixels."""
    vae.eval()
    truth, recon, errors = pointmap_reconstruction(vae, item, cfg)
    metrics = {"pointmap_median_error_mm": 1000 * float(np.median(errors)) if errors.size else float("nan")}
    return metrics, picture([depth_picture(truth[..., 2], cfg), depth_picture(recon[..., 2], cfg)])


@torch.no_grad()
def unet_sample(
    rgb_vae: torch.nn.Module,
    pm_vae: torch.nn.Module,
    unet: torch.nn.Module,
    item: dict[str, torch.Tensor],
    cfg: ModelConfig,
) -> tuple[dict[str, float], np.ndarray]:
    """A generation from the model-space `item`'s condition frame (batch of 1) over its recorded future:
    rows RGB n, depth n, RGB m, depth of m in n's frame, each recorded then generated."""
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline
    from geo4d_studio.diffusion.sampler import sample_euler

    pipe = Geo4DPipeline(rgb_vae, pm_vae, unet, cfg)
    for module in pipe.components.values():
        module.eval()
    cond_n = pipe.encode_condition(item["rgb_n"][:, 0], item["pm_n"][:, 0])
    cond_m = pipe.encode_condition(item["rgb_m"][:, 0], item["pm_m_in_n"][:, 0])
    generator = torch.Generator().manual_seed(0)
    x_n, x_m = sample_euler(unet, cond_n, cond_m, cfg, steps=SAMPLE_STEPS, generator=generator)
    rgb_n, pm_n = pipe.decode_latents(x_n[0])
    rgb_m, pm_m = pipe.decode_latents(x_m[0])
    truth = {key: item[key][0, 1:] for key in ("rgb_n", "pm_n", "rgb_m", "pm_m_in_n")}
    z = {
        name: model_to_pointmap(x, cfg, own_frame=own)[..., 2]
        for name, x, own in (
            ("n", truth["pm_n"], True),
            ("gen_n", pm_n, True),
            ("m", truth["pm_m_in_n"], False),
            ("gen_m", pm_m, False),
        )
    }
    rows = [
        model_to_rgb(truth["rgb_n"]),
        model_to_rgb(rgb_n),
        depth_picture(z["n"], cfg),
        depth_picture(z["gen_n"], cfg),
        model_to_rgb(truth["rgb_m"]),
        model_to_rgb(rgb_m),
        depth_picture(z["m"], cfg),
        depth_picture(z["gen_m"], cfg),
    ]
    metrics = {
        "psnr_n": float(np.mean(psnr(rows[0], rows[1]))),
        "psnr_m": float(np.mean(psnr(rows[4], rows[5]))),
        "absrel_n": abs_rel(z["gen_n"], z["n"]),
        "absrel_m_in_n": abs_rel(z["gen_m"], z["m"]),
    }
    return metrics, picture(rows)

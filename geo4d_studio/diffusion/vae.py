"""The two KL autoencoders (RGB and pointmap): 3 image channels ↔ `latent_channels`, 8× down.

Latents are the posterior mean times the VAE's `scaling_factor` (deterministic, as SVD does for its
condition frame); `decode` divides by it first.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from diffusers import AutoencoderKL

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.normalize import model_to_pointmap


def build_vae(cfg: ModelConfig) -> AutoencoderKL:
    """A randomly initialised diffusers AutoencoderKL sized by `cfg` (4 levels = 8× down)."""
    n = len(cfg.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.vae_block_out_channels,
        layers_per_block=cfg.vae_layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.vae_norm_num_groups,
        sample_size=max(cfg.image_size),
        scaling_factor=cfg.vae_scaling_factor,
    )


def freeze_encoder(vae: AutoencoderKL) -> None:
    """Stop training `vae`'s encoder (and its `quant_conv`): its latent space, the one a U-Net was
    trained on, stays as it is while the decoder learns to reconstruct from it."""
    vae.encoder.requires_grad_(False)
    if vae.quant_conv is not None:
        vae.quant_conv.requires_grad_(False)


def init_pointmap_vae_from(rgb_vae: AutoencoderKL) -> AutoencoderKL:
    """A pointmap VAE that starts as an exact copy of the RGB VAE (same config and weights)."""
    return copy.deepcopy(rgb_vae)


def encode(vae: AutoencoderKL, x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in [-1, 1] → scaled latents (..., C, H/8, W/8)."""
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:]).to(vae.device, vae.dtype)
    z = vae.encode(flat).latent_dist.mode() * vae.config.scaling_factor
    return z.reshape(*lead, *z.shape[1:])


def decode(vae: AutoencoderKL, z: torch.Tensor) -> torch.Tensor:
    """Scaled latents (..., C, h, w) → images (..., 3, 8h, 8w) (not clipped)."""
    lead = z.shape[:-3]
    flat = z.reshape(-1, *z.shape[-3:]).to(vae.device, vae.dtype) / vae.config.scaling_factor
    x = vae.decode(flat).sample
    return x.reshape(*lead, *x.shape[1:])


@torch.no_grad()
def pointmap_reconstruction(
    pm_vae: AutoencoderKL, item: dict[str, torch.Tensor], cfg: ModelConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """View n's pointmaps and view m's in n's frame of a model-space `item` (see dataset.model_batch),
    recorded and through `pm_vae`, metres (N, H, W, 3) each, and the reconstruction error in metres at
    every recorded valid pixel (1-D; a valid pixel decoded as invalid counts its full distance from the
    origin)."""
    truth, recon, valid = [], [], []
    for pm_key, valid_key, own_frame in (("pm_n", "valid_n", True), ("pm_m_in_n", "valid_m", False)):
        x = item[pm_key]
        for pm, out in ((x, truth), (decode(pm_vae, encode(pm_vae, x)), recon)):
            out.append(model_to_pointmap(pm, cfg, own_frame=own_frame).reshape(-1, *x.shape[-2:], 3))
        valid.append(item[valid_key].cpu().numpy().reshape(-1, *x.shape[-2:]) > 0)
    truth_m, recon_m = np.concatenate(truth), np.concatenate(recon)
    return truth_m, recon_m, np.linalg.norm(recon_m - truth_m, axis=-1)[np.concatenate(valid)]

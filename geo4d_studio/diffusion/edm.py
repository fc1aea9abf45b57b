"""EDM (Karras et al. 2022) preconditioning and the training loss of the two-view model.

Latent layout per view: channels 0-3 are RGB latents, 4-7 pointmap latents. View n's pointmap is in
n's camera frame; view m's pointmap channels hold m's points in n's frame (the cross-view target).

Loss = L_diff(n: RGB + pointmap) + L_diff(m: RGB) + lambda_3d · L_3D(m: pointmap-in-n). With
`use_3d_loss=False` the L_3D term is dropped: view m's pointmap channels then get no supervision at all
(the model still outputs them, but they carry no trained meaning). Every term is the EDM-weighted
squared error of the denoised latents, with per-pixel weight 1 + gripper_weight inside the
8×-downsampled, dilated gripper mask. With probability `cond_dropout` the condition latents of a
sample (both views) are zeroed, which trains the unconditional branch used by classifier-free guidance.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.vae import encode

BATCH_KEYS = ("rgb_n", "rgb_m", "pm_n", "pm_m_in_n", "mask_n", "mask_m")


def edm_scalings(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in, c_noise) for noise levels `sigma` (any shape)."""
    total = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = sigma * sigma_data / total.sqrt()
    c_in = 1.0 / total.sqrt()
    c_noise = sigma.log() / 4.0
    return c_skip, c_out, c_in, c_noise


def edm_denoise(
    unet: torch.nn.Module,
    x_n: torch.Tensor,
    x_m: torch.Tensor,
    cond_n: torch.Tensor,
    cond_m: torch.Tensor,
    sigma: torch.Tensor,
    sigma_data: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoised estimates D(x; sigma) of both views, float32.

    x_*: noisy latents (B, F, 8, h, w); cond_*: clean condition latents (B, 8, h, w); sigma: (B,).
    The U-Net runs in its own dtype; the skip connection and the result stay in float32.
    """
    dtype = next(unet.parameters()).dtype
    x_n, x_m = x_n.float(), x_m.float()
    sigma = torch.as_tensor(sigma, device=x_n.device, dtype=torch.float32).reshape(-1).expand(x_n.shape[0])
    c_skip, c_out, c_in, c_noise = (c.reshape(-1, 1, 1, 1, 1) for c in edm_scalings(sigma, sigma_data))
    out_n, out_m = unet(
        (c_in * x_n).to(dtype),
        (c_in * x_m).to(dtype),
        cond_n.to(dtype),
        cond_m.to(dtype),
        c_noise.reshape(-1),
    )
    return c_skip * x_n + c_out * out_n.float(), c_skip * x_m + c_out * out_m.float()


def encode_views(rgb_vae, pm_vae, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-VAE latents (B, F+1, 8, h, w) of view n (RGB, pointmap) and view m (RGB, pointmap-in-n)."""
    with torch.no_grad():
        lat_n = torch.cat([encode(rgb_vae, batch["rgb_n"]), encode(pm_vae, batch["pm_n"])], dim=2)
        lat_m = torch.cat([encode(rgb_vae, batch["rgb_m"]), encode(pm_vae, batch["pm_m_in_n"])], dim=2)
    return lat_n, lat_m


def latent_gripper_weight(
    mask: torch.Tensor, latent_hw: tuple[int, int], gripper_weight: float
) -> torch.Tensor:
    """Per-latent-pixel loss weight (..., 1, h, w): 1 + gripper_weight inside the dilated, 8× down mask."""
    lead = mask.shape[:-3]
    flat = mask.reshape(-1, 1, *mask.shape[-2:]).float()
    down = functional.adaptive_max_pool2d(flat, latent_hw)
    dilated = functional.max_pool2d(down, kernel_size=3, stride=1, padding=1)
    return (1.0 + gripper_weight * dilated).reshape(*lead, 1, *latent_hw)


def edm_loss(
    unet: torch.nn.Module,
    rgb_vae,
    pm_vae,
    batch: dict[str, torch.Tensor],
    cfg: ModelConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch (see the module docstring) and its parts as floats.

    batch: "rgb_n", "rgb_m", "pm_n", "pm_m_in_n" (B, F+1, 3, H, W) in model space (frame 0 = the
    condition frame) and "mask_n", "mask_m" (B, F+1, 1, H, W) float gripper masks. `generator` (on
    the CPU) makes sigma, noise and condition dropout reproducible.
    """
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise KeyError(f"edm_loss batch lacks {missing}")
    lat_n, lat_m = encode_views(rgb_vae, pm_vae, batch)
    return edm_loss_latents(unet, lat_n, lat_m, batch["mask_n"], batch["mask_m"], cfg, generator)


def edm_loss_latents(
    unet: torch.nn.Module,
    lat_n: torch.Tensor,
    lat_m: torch.Tensor,
    mask_n: torch.Tensor,
    mask_m: torch.Tensor,
    cfg: ModelConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """`edm_loss` on latents already encoded by `encode_views` (B, F+1, 8, h, w): lets training cache them.

    mask_*: (B, F+1, 1, H, W) gripper masks at image size.
    """
    lat_n, lat_m = lat_n.float(), lat_m.float()
    device = lat_n.device
    batch_size = lat_n.shape[0]
    x0_n, x0_m = lat_n[:, 1:], lat_m[:, 1:]
    keep = (torch.rand(batch_size, generator=generator) >= cfg.cond_dropout).float().to(device)
    cond_n = lat_n[:, 0] * keep.reshape(-1, 1, 1, 1)
    cond_m = lat_m[:, 0] * keep.reshape(-1, 1, 1, 1)

    sigma = (torch.randn(batch_size, generator=generator) * cfg.p_std + cfg.p_mean).exp().to(device)
    noise_n = torch.randn(x0_n.shape, generator=generator).to(device)
    noise_m = torch.randn(x0_m.shape, generator=generator).to(device)
    s = sigma.reshape(-1, 1, 1, 1, 1)
    d_n, d_m = edm_denoise(
        unet, x0_n + s * noise_n, x0_m + s * noise_m, cond_n, cond_m, sigma, cfg.sigma_data
    )
    lam = ((sigma**2 + cfg.sigma_data**2) / (sigma * cfg.sigma_data) ** 2).reshape(-1, 1, 1, 1, 1)
    hw = tuple(x0_n.shape[-2:])
    w_n = latent_gripper_weight(mask_n[:, 1:].to(device), hw, cfg.gripper_weight)
    w_m = latent_gripper_weight(mask_m[:, 1:].to(device), hw, cfg.gripper_weight)
    err_n = lam * w_n * (d_n - x0_n) ** 2
    err_m = lam * w_m * (d_m - x0_m) ** 2
    c = cfg.latent_channels
    loss_n = err_n.mean()
    loss_m = err_m[:, :, :c].mean()
    loss_3d = err_m[:, :, c:].mean()
    loss = loss_n + loss_m + (cfg.lambda_3d * loss_3d if cfg.use_3d_loss else 0.0)
    logs = {
        "loss": float(loss.detach()),
        "loss_diff_n": float(loss_n.detach()),
        "loss_diff_m": float(loss_m.detach()),
        "loss_3d": float(loss_3d.detach()),
        "sigma_mean": float(sigma.mean()),
    }
    return loss, logs

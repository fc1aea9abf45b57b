"""Euler EDM sampler over Karras sigmas with per-frame classifier-free guidance.

The unconditional branch zeroes the condition latents (what condition dropout trained). The guidance
scale rises linearly over the generated frames, from `guidance_min` at frame 1 to `guidance` at frame F.
Noise comes from a seeded CPU `torch.Generator`, so results do not depend on the device's RNG. On CUDA,
given a `GraphCache`, the denoiser runs as a captured CUDA graph (see `cuda_graph`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.cuda_graph import GraphCache
from geo4d_studio.diffusion.edm import edm_denoise

StepCallback = Callable[[int, int, tuple[torch.Tensor, torch.Tensor]], bool | None]


class GenerationCancelled(Exception):  # noqa: N818 (the name the API promises)
    """Raised when a step callback returns False."""


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Decreasing noise levels (steps + 1,), the last one 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv_rho = 1.0 / rho
    sigmas = (sigma_max**inv_rho + ramp * (sigma_min**inv_rho - sigma_max**inv_rho)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).float()


def guidance_ramp(frames: int, guidance_min: float, guidance: float) -> torch.Tensor:
    """Per-frame guidance scales (frames,): linear from guidance_min (frame 1) to guidance (frame F)."""
    if frames == 1:
        return torch.tensor([guidance], dtype=torch.float32)
    return torch.linspace(guidance_min, guidance, frames, dtype=torch.float32)


def guided_denoise(
    unet: torch.nn.Module,
    x_n: torch.Tensor,
    x_m: torch.Tensor,
    cond_n: torch.Tensor,
    cond_m: torch.Tensor,
    sigma: torch.Tensor,
    scales: torch.Tensor | None,
    sigma_data: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CFG-combined denoised latents; conditional and unconditional branches run as one batch.

    `scales` (F,) on the latents' device, or None for no guidance (every scale 1)."""
    if scales is None:
        return edm_denoise(unet, x_n, x_m, cond_n, cond_m, sigma, sigma_data)
    b = x_n.shape[0]
    d_n, d_m = edm_denoise(
        unet,
        torch.cat([x_n, x_n]),
        torch.cat([x_m, x_m]),
        torch.cat([cond_n, torch.zeros_like(cond_n)]),
        torch.cat([cond_m, torch.zeros_like(cond_m)]),
        sigma.reshape(-1).expand(b).repeat(2),
        sigma_data,
    )
    w = scales.reshape(1, -1, 1, 1, 1)
    return tuple(d[b:] + w * (d[:b] - d[b:]) for d in (d_n, d_m))


@torch.no_grad()
def sample_euler(
    unet: torch.nn.Module,
    cond_n: torch.Tensor,
    cond_m: torch.Tensor,
    cfg: ModelConfig,
    *,
    num_frames: int | None = None,
    steps: int = 25,
    guidance: float | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    graphs: GraphCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample future latents (B, F, 8, h, w) of both views from condition latents (B, 8, h, w).

    With `graphs` and the latents on CUDA, the denoiser is replayed from a CUDA graph kept in `graphs`.
    `callback(step, steps, (x0_n, x0_m))` runs after every step with the current denoised estimate;
    returning False raises GenerationCancelled.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    frames = num_frames or cfg.num_future_frames
    guidance = cfg.guidance_max if guidance is None else guidance
    shape = (cond_n.shape[0], frames, *cond_n.shape[1:])
    sigmas = karras_sigmas(steps, cfg.sigma_min, cfg.sigma_max, cfg.rho).to(cond_n.device)
    ramp = guidance_ramp(frames, cfg.guidance_min, guidance)
    scales = None if bool((ramp == 1.0).all()) else ramp.to(cond_n.device)
    x_n = torch.randn(shape, generator=generator).to(cond_n.device) * sigmas[0]  # float32 state
    x_m = torch.randn(shape, generator=generator).to(cond_n.device) * sigmas[0]

    def denoise(x_n, x_m, sigma, cond_n, cond_m) -> tuple[torch.Tensor, torch.Tensor]:
        return guided_denoise(unet, x_n, x_m, cond_n, cond_m, sigma, scales, cfg.sigma_data)

    if graphs is not None and cond_n.device.type == "cuda":
        key = (id(unet), shape, cond_n.device, cond_n.dtype, cfg.sigma_data, tuple(ramp.tolist()))
        denoise = graphs.get(key, denoise, x_n, x_m, sigmas[0], cond_n, cond_m)
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d_n, d_m = denoise(x_n, x_m, sigma, cond_n, cond_m)
        x_n = x_n + (x_n - d_n) / sigma * (sigma_next - sigma)
        x_m = x_m + (x_m - d_m) / sigma * (sigma_next - sigma)
        if callback is not None and callback(i + 1, steps, (d_n, d_m)) is False:
            raise GenerationCancelled(f"cancelled at step {i + 1} of {steps}")
    return x_n, x_m

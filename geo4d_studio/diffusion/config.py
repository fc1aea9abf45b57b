"""`ModelConfig`: every hyper-parameter of the 4D model in one JSON-serialisable dataclass (no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

TRAINING_PHASES = ("rgb_vae", "pointmap_vae", "unet")  # in the order a full training run takes them
VAE_LR = 5e-4  # default peak learning rate of the VAE phases


@dataclass
class ModelConfig:
    """Sizes, normalisation and loss/sampling settings of the geometry-aware 4D diffusion model.

    Images are `image_size = (H, W)` pixels; latents are 8× smaller. The model predicts
    `num_future_frames` frames, `frame_stride` recorded frames apart, after the condition frame.
    Pointmaps map `pointmap_range_m` linearly to [-1, 1] on every axis; points with z <= 0 or
    z > `max_depth_m` are invalid. EDM: `sigma_data`, training sigmas ~ lognormal(`p_mean`, `p_std`),
    sampling sigmas Karras(`sigma_min`, `sigma_max`, `rho`).
    """

    image_size: tuple[int, int] = (64, 80)
    num_future_frames: int = 8
    frame_stride: int = 2
    latent_channels: int = 4
    vae_block_out_channels: tuple[int, ...] = (32, 32, 64, 64)
    vae_layers_per_block: int = 1
    vae_norm_num_groups: int = 32
    vae_scaling_factor: float = 1.0
    unet_block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 32
    cross_attention_dim: int = 32
    cross_view_attention: bool = True
    pointmap_range_m: tuple[float, float] = (-1.0, 2.0)
    max_depth_m: float = 2.0
    sigma_data: float = 1.0
    p_mean: float = 1.0
    p_std: float = 1.6
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    lambda_3d: float = 1.0
    use_3d_loss: bool = True
    gripper_weight: float = 1.0
    cond_dropout: float = 0.1
    guidance_min: float = 1.0
    guidance_max: float = 2.5

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in self.image_size)
        self.vae_block_out_channels = tuple(int(v) for v in self.vae_block_out_channels)
        self.unet_block_out_channels = tuple(int(v) for v in self.unet_block_out_channels)
        self.pointmap_range_m = tuple(float(v) for v in self.pointmap_range_m)
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Inconsistencies that would make the model unbuildable (empty when valid)."""
        out = []
        h, w = self.image_size
        if h % 8 or w % 8:
            out.append(f"image_size {self.image_size} must be multiples of 8 (the VAE downsamples 8x)")
        if len(self.vae_block_out_channels) != 4:
            out.append("vae_block_out_channels needs 4 entries (3 downsamplings = 8x)")
        if any(c % self.vae_norm_num_groups for c in self.vae_block_out_channels):
            out.append("vae_block_out_channels must be multiples of vae_norm_num_groups")
        if any(c % 32 for c in self.unet_block_out_channels):
            out.append("unet_block_out_channels must be multiples of 32 (group norm)")
        if any(c % self.attention_head_dim for c in self.unet_block_out_channels):
            out.append("unet_block_out_channels must be multiples of attention_head_dim")
        if len(self.unet_block_out_channels) < 2:
            out.append("unet_block_out_channels needs at least 2 levels")
        lo, hi = self.pointmap_range_m
        if not hi > lo:
            out.append("pointmap_range_m must be (low, high) with high > low")
        if self.num_future_frames < 1 or self.frame_stride < 1:
            out.append("num_future_frames and frame_stride must be >= 1")
        return out

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of the latents: the image size divided by 8."""
        return self.image_size[0] // 8, self.image_size[1] // 8

    @property
    def view_channels(self) -> int:
        """Latent channels per view: RGB latents + pointmap latents."""
        return 2 * self.latent_channels

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write as JSON to `path` (atomic)."""
        from geo4d_studio.atomic import atomic_path

        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a JSON file written by `save` (raises OSError / ValueError / json errors)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def small(cls) -> ModelConfig:
        """The shipped CPU-trainable model: 64×80 images (8×10 latents), 8 future frames, stride 2."""
        return cls()

    @classmethod
    def tiny(cls) -> ModelConfig:
        """For tests: 32×32 images (4×4 latents), 3 future frames, thin VAE and U-Net."""
        return cls(
            image_size=(32, 32),
            num_future_frames=3,
            frame_stride=1,
            vae_block_out_channels=(8, 8, 16, 16),
            vae_norm_num_groups=8,
            unet_block_out_channels=(32, 32),
            attention_head_dim=16,
            cross_attention_dim=16,
        )

    @classmethod
    def paper(cls) -> ModelConfig:
        """SVD-sized (arXiv 2507.01099): 256×320, 10 frames stride 5, U-Net (320, 640, 1280, 1280)."""
        return cls(
            image_size=(256, 320),
            num_future_frames=10,
            frame_stride=5,
            vae_block_out_channels=(128, 256, 512, 512),
            vae_layers_per_block=2,
            vae_scaling_factor=0.18215,
            unet_block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            attention_head_dim=64,
            cross_attention_dim=1024,
            sigma_max=700.0,
        )

"""Conversions between numpy images/pointmaps (H, W, C) and the model's tensors (C, H, W) in [-1, 1].

RGB: uint8 [0, 255] ↔ [-1, 1]. Pointmaps: the fixed affine map of `cfg.pointmap_range_m` (default
[-1, 2] m) to [-1, 1] on every axis, no per-scene scaling. Invalid points (z <= 0 or z > max_depth_m)
are all-zero in metres and therefore take the model-space value of 0 m, `pointmap_invalid_value(cfg)`
(−1/3 for the default range) on all three channels. Decoding, `model_to_pointmap` marks a pixel
invalid (all zero) when its point lies within `INVALID_RADIUS_M` of the origin (the invalid code plus
decoder noise; no visible point is that close to the camera) and, for a pointmap in its own camera's
frame, when z <= 0 or z > max_depth_m. A pointmap moved into another camera's frame (view m in n's
frame) is decoded with `own_frame=False`: there the depth limits belong to the other camera.
Values outside the range are not clipped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.nn import functional

from geo4d_studio.diffusion.config import ModelConfig

INVALID_RADIUS_M = 0.1


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor sharing `x`'s memory where it can (a read-only array, e.g. a scene frame, is copied)."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(x, requirements=("C", "W")))


def rgb_to_model(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) → float32 (..., 3, H, W) in [-1, 1]."""
    x = as_tensor(rgb)
    return (x.float() / 127.5 - 1.0).movedim(-1, -3)


def model_to_rgb(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] → uint8 (..., H, W, 3) (clipped, rounded)."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.movedim(-3, -1).to(torch.uint8).cpu().numpy()


def pointmap_valid(pm_m: np.ndarray | torch.Tensor, cfg: ModelConfig) -> np.ndarray | torch.Tensor:
    """(..., H, W, 3) metres → (..., H, W) bool: 0 < z <= max_depth_m."""
    z = pm_m[..., 2]
    return (z > 0) & (z <= cfg.max_depth_m)


def pointmap_invalid_value(cfg: ModelConfig) -> float:
    """The model-space value every channel of an invalid pixel takes (the image of 0 m)."""
    lo, hi = cfg.pointmap_range_m
    return float(-2.0 * lo / (hi - lo) - 1.0)


def pointmap_to_model(
    pm_m: np.ndarray | torch.Tensor, cfg: ModelConfig, valid: np.ndarray | torch.Tensor | None = None
) -> torch.Tensor:
    """Pointmap (..., H, W, 3) in metres → float32 (..., 3, H, W); invalid pixels → the image of 0 m.

    Validity is `valid` (..., H, W) when given (use it for a pointmap moved into another camera's
    frame: the depth test belongs to the camera that measured it), else 0 < z <= max_depth_m.
    """
    pm = as_tensor(pm_m).float()
    valid = pointmap_valid(pm, cfg) if valid is None else as_tensor(valid).bool()
    pm = pm * valid.unsqueeze(-1)
    lo, hi = cfg.pointmap_range_m
    return ((pm - lo) * (2.0 / (hi - lo)) - 1.0).movedim(-1, -3)


def _model_to_metres(x: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    lo, hi = cfg.pointmap_range_m
    return ((x.detach().float() + 1.0) * ((hi - lo) / 2.0) + lo).movedim(-3, -1)


def decoded_valid(pm_m: torch.Tensor, cfg: ModelConfig, *, own_frame: bool = True) -> torch.Tensor:
    """(..., H, W, 3) decoded metres → (..., H, W) bool validity (see the module docstring)."""
    valid = pm_m.norm(dim=-1) > INVALID_RADIUS_M
    return valid & pointmap_valid(pm_m, cfg) if own_frame else valid


def model_to_pointmap(x: torch.Tensor, cfg: ModelConfig, *, own_frame: bool = True) -> np.ndarray:
    """float (..., 3, H, W) model space → float32 (..., H, W, 3) metres, invalid pixels all zero."""
    pm = _model_to_metres(x, cfg)
    pm = pm * decoded_valid(pm, cfg, own_frame=own_frame).unsqueeze(-1)
    return pm.cpu().numpy().astype(np.float32)


def resize(x: torch.Tensor, size: tuple[int, int], mode: Literal["bilinear", "nearest"]) -> torch.Tensor:
    """Resize (..., C, H, W) to (..., C, *size): bilinear (antialiased when shrinking) or nearest-exact."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:]).float()
    if mode == "bilinear":
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        out = functional.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    else:
        out = functional.interpolate(flat, size=size, mode="nearest-exact")
    return out.reshape(*lead, x.shape[-3], *size)


def resize_pointmap_model(
    x: torch.Tensor, size: tuple[int, int], cfg: ModelConfig, *, own_frame: bool = True
) -> torch.Tensor:
    """Resize a model-space pointmap (..., 3, H, W) without mixing invalid pixels into valid ones.

    Values are interpolated bilinearly among valid neighbours only (normalised interpolation); the
    validity of each output pixel is its nearest input pixel's, so no holes grow and none appear.
    """
    valid = decoded_valid(_model_to_metres(x, cfg), cfg, own_frame=own_frame).unsqueeze(-3).float()
    weight = resize(valid, size, "bilinear")
    values = resize(x * valid, size, "bilinear") / weight.clamp_min(1e-6)
    keep = (resize(valid, size, "nearest") > 0.5) & (weight > 1e-6)
    return torch.where(keep, values, torch.full_like(values, pointmap_invalid_value(cfg)))


def scale_intrinsics(K: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics for an image resized from `from_hw` to `to_hw` (pixel centres at integer + 0.5 edges)."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    K = np.array(K, dtype=np.float64, copy=True)
    K[0, 0], K[0, 1] = K[0, 0] * sx, K[0, 1] * sx
    K[1, 1] = K[1, 1] * sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K

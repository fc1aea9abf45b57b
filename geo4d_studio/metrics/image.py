"""Image quality: PSNR and SSIM of uint8 RGB frames, per frame (vectorised over frames and channels).

Inputs are (H, W, 3) or batches (..., H, W, 3) of uint8 (data range 255). One image gives a float;
a batch gives an array of per-frame values (report their mean).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

DATA_RANGE = 255.0
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 3:
        raise ValueError(f"images must have equal shapes (..., H, W, C), got {a.shape} and {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def _per_frame(values: np.ndarray) -> float | np.ndarray:
    return float(values) if values.ndim == 0 else values


def psnr(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB, `10 log10(255^2 / MSE)`; identical frames give inf."""
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return _per_frame(10.0 * np.log10(DATA_RANGE**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Structural similarity as skimage's `structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=255, channel_axis=-1)`.

    Gaussian window sigma 1.5 truncated at 3.5 sigma (11 x 11), reflect padding, the SSIM map
    averaged over each channel without a 5-pixel border, then over channels.
    """
    a, b = _pair(a, b)
    sigma = [0.0] * (a.ndim - 3) + [SSIM_SIGMA, SSIM_SIGMA, 0.0]

    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return _per_frame(ssim_map[..., pad:-pad, pad:-pad, :].mean(axis=(-3, -2, -1)))

"""PSNR / SSIM against closed forms and a direct reference; AbsRel / delta1 on constructed depth."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.metrics.depth import abs_rel, delta1
from geo4d_studio.metrics.image import psnr, ssim


def reference_ssim(a, b):
    """SSIM written out pixel by pixel: 11 x 11 normalised Gaussian (sigma 1.5), interior pixels only."""
    x = np.arange(-5, 6)
    g = np.exp(-0.5 * (x / 1.5) ** 2)
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    values = []
    for c in range(a.shape[2]):
        for i in range(5, a.shape[0] - 5):
            for j in range(5, a.shape[1] - 5):
                pa, pb = a[i - 5 : i + 6, j - 5 : j + 6, c], b[i - 5 : i + 6, j - 5 : j + 6, c]
                ma, mb = (window * pa).sum(), (window * pb).sum()
                va, vb = (window * pa * pa).sum() - ma**2, (window * pb * pb).sum() - mb**2
                cov = (window * pa * pb).sum() - ma * mb
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return np.mean(values)


def test_psnr_identical_and_known_noise():
    rng = np.random.default_rng(0)
    image = rng.integers(10, 240, (32, 48, 3)).astype(np.uint8)
    assert psnr(image, image) == np.inf
    noisy = image.copy()
    noisy[::2] += 4  # half the pixels off by 4: MSE = 8
    assert psnr(image, noisy) == pytest.approx(10 * np.log10(255**2 / 8))
    frames = psnr(np.stack([image, image, image]), np.stack([image, noisy, 255 - image]))
    assert frames.shape == (3,) and frames[0] == np.inf and frames[1] == pytest.approx(39.0999, abs=1e-4)
    with pytest.raises(ValueError):
        psnr(image, image[:10])


def test_ssim_identical_constant_and_reference():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 28, 3)).astype(np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    # constant images: only the luminance term remains
    a, b = np.full((20, 20, 3), 100, np.uint8), np.full((20, 20, 3), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 140 + c1) / (100**2 + 140**2 + c1))
    other = np.clip(image.astype(int) + rng.normal(0, 25, image.shape), 0, 255).astype(np.uint8)
    value = ssim(image, other)
    assert value == pytest.approx(reference_ssim(image, other), abs=1e-9)
    assert 0.2 < value < 0.95
    batch = ssim(np.stack([image, image]), np.stack([image, other]))
    assert np.allclose(batch, [1.0, value])


def test_abs_rel_and_delta1_on_constructed_depth():
    gt = np.array([[1.0, 2.0, 0.0], [4.0, 0.5, 1.0]], np.float32)
    pred = np.array([[1.1, 2.0, 3.0], [2.0, 0.0, 1.3]], np.float32)
    # valid in both: (1, 1.1), (2, 2), (4, 2), (1, 1.3)
    assert abs_rel(pred, gt) == pytest.approx((0.1 + 0 + 0.5 + 0.3) / 4, rel=1e-6)
    assert delta1(pred, gt) == pytest.approx(2 / 4)  # ratios 1.1, 1, 2, 1.3
    assert delta1(pred, gt, thresh=1.35) == pytest.approx(3 / 4)
    assert abs_rel(gt, gt) == 0 and delta1(gt, gt) == 1
    assert np.isnan(abs_rel(np.zeros(3), np.ones(3))) and np.isnan(delta1(np.zeros(3), np.ones(3)))

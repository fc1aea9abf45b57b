"""Depth accuracy as in the paper: AbsRel and delta1 on z, over pixels where both depths are > 0.

For cross-view evaluation pass the z of view m's predicted pointmap in view n's frame and the
ground-truth z of view m's points in n's frame. Inputs are depth arrays of equal shape (any
shape, e.g. (F, H, W)); with no pixel valid in both the result is NaN (nothing to measure).
"""

from __future__ import annotations

import numpy as np


def _valid_pairs(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"depth shapes differ: {pred.shape} vs {gt.shape}")
    both = (pred > 0) & (gt > 0)
    return pred[both], gt[both]


def abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of |pred - gt| / gt over pixels with pred > 0 and gt > 0."""
    pred, gt = _valid_pairs(pred, gt)
    return float(np.mean(np.abs(pred - gt) / gt)) if gt.size else float("nan")


def delta1(pred: np.ndarray, gt: np.ndarray, thresh: float = 1.25) -> float:
    """Fraction of pixels (both > 0) with max(pred / gt, gt / pred) < `thresh`."""
    pred, gt = _valid_pairs(pred, gt)
    return float(np.mean(np.maximum(pred / gt, gt / pred) < thresh)) if gt.size else float("nan")

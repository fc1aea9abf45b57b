"""Open / closed from the tracked finger separation."""

from __future__ import annotations

import numpy as np

CLOSED_BELOW_M = 0.07
"""Default threshold for the Panda (fully open 0.08 m): narrower than this counts as closed."""


def gripper_closed(width_m: np.ndarray, threshold_m: float = CLOSED_BELOW_M) -> np.ndarray:
    """(N,) float: 1.0 closed, 0.0 open, NaN where the width is unknown (lost frames)."""
    width = np.asarray(width_m, dtype=np.float64)
    return np.where(np.isfinite(width), (width < threshold_m).astype(np.float64), np.nan)

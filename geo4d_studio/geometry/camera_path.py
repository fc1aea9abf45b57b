"""A camera path through key poses, sampled by a parameter s in [0, 1] (novel-view fly-throughs)."""

from __future__ import annotations

import numpy as np

from geo4d_studio.geometry.se3 import interpolate, is_rigid

ROTATION_WEIGHT_M = 0.25
"""Metres of path length that one radian of rotation counts as when spacing s along the path."""


class CameraPath:
    """SE(3) interpolation through `poses` (N, 4, 4) in order, spaced by arc length.

    Segment length is translation distance plus `ROTATION_WEIGHT_M` times the rotation angle, so a
    pure turn in place still takes time; s in [0, 1] runs from the first to the last pose at an even
    pace. s is clamped to [0, 1]. A one-pose path (or all-equal poses) always returns that pose.
    """

    def __init__(self, poses: np.ndarray) -> None:
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
            raise ValueError(f"CameraPath needs poses of shape (N, 4, 4) with N >= 1, got {poses.shape}")
        if not np.all(is_rigid(poses, atol=1e-5)):
            raise ValueError("CameraPath poses must be rigid transforms")
        self.poses = poses
        translation = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
        relative = np.einsum("nji,njk->nik", poses[:-1, :3, :3], poses[1:, :3, :3])
        cos_angle = np.clip((np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
        lengths = translation + ROTATION_WEIGHT_M * np.arccos(cos_angle)
        self._knots = np.concatenate([[0.0], np.cumsum(lengths)])

    @property
    def length(self) -> float:
        """Total path length (metres plus weighted radians)."""
        return float(self._knots[-1])

    def pose_at(self, s: float) -> np.ndarray:
        """The (4, 4) pose at fraction `s` of the path length (clamped to [0, 1])."""
        if self.length == 0.0:
            return self.poses[0].copy()
        distance = float(np.clip(s, 0.0, 1.0)) * self.length
        segment = int(
            np.clip(np.searchsorted(self._knots, distance, side="right") - 1, 0, len(self.poses) - 2)
        )
        start, end = self._knots[segment], self._knots[segment + 1]
        local = 0.0 if end == start else (distance - start) / (end - start)
        return interpolate(self.poses[segment], self.poses[segment + 1], local)

"""Accuracy of a tracked trajectory against ground-truth tool poses (no alignment: both are in the world)."""

from __future__ import annotations

import numpy as np

from geo4d_studio.trajectory import Trajectory


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the relative rotation between (..., 3, 3) rotation batches."""
    cos = (np.einsum("...ij,...ij->...", R_a, R_b) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(traj: Trajectory, T_world_tool_true: np.ndarray) -> dict[str, float]:
    """ATE (translation RMSE, m), mean / max rotation error (deg) over tracked frames, and the share
    of frames tracked. `T_world_tool_true` is (N, 4, 4) aligned with `traj` (e.g. ee_pose[traj.frames])."""
    tracked = ~traj.lost & np.isfinite(traj.poses).all(axis=(1, 2))
    est, gt = traj.poses[tracked], np.asarray(T_world_tool_true, dtype=np.float64)[tracked]
    if not tracked.any():
        nan = float("nan")
        return {"ate_rmse_m": nan, "rot_mean_deg": nan, "rot_max_deg": nan, "tracked_fraction": 0.0}
    dt = est[:, :3, 3] - gt[:, :3, 3]
    rot = rotation_angle_deg(est[:, :3, :3], gt[:, :3, :3])
    return {
        "ate_rmse_m": float(np.sqrt(np.mean(np.sum(dt**2, axis=1)))),
        "rot_mean_deg": float(rot.mean()),
        "rot_max_deg": float(rot.max()),
        "tracked_fraction": float(tracked.mean()),
    }

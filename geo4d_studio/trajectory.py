"""A tracked (or recorded) gripper trajectory: poses in the world over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Trajectory:
    """Gripper poses over time; lost frames keep NaN poses and are never invented.

    Shapes: timestamps (N,) s, poses (N, 4, 4) T_world_tool, gripper_width (N,) m (NaN unknown),
    confidence (N,) in [0, 1], frames (N,) recorded frame index, lost (N,) bool, source_view N names.
    """

    timestamps: np.ndarray
    poses: np.ndarray
    gripper_width: np.ndarray
    confidence: np.ndarray
    frames: np.ndarray
    lost: np.ndarray
    source_view: list[str]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.poses = np.asarray(self.poses, dtype=np.float64)
        self.gripper_width = np.asarray(self.gripper_width, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.frames = np.asarray(self.frames, dtype=np.int64)
        self.lost = np.asarray(self.lost, dtype=bool)
        self.source_view = list(self.source_view)
        n = len(self.timestamps)
        shapes = {
            "poses": (self.poses.shape, (n, 4, 4)),
            "gripper_width": (self.gripper_width.shape, (n,)),
            "confidence": (self.confidence.shape, (n,)),
            "frames": (self.frames.shape, (n,)),
            "lost": (self.lost.shape, (n,)),
            "source_view": ((len(self.source_view),), (n,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"Trajectory.{name}: shape {got}, expected {want}")

    def __len__(self) -> int:
        return len(self.timestamps)

    def select_frames(self, frames: np.ndarray | list[int]) -> Trajectory:
        """The samples whose recorded frame index is in `frames` (same metadata)."""
        keep = np.isin(self.frames, np.asarray(frames, dtype=np.int64))
        return Trajectory(
            self.timestamps[keep],
            self.poses[keep],
            self.gripper_width[keep],
            self.confidence[keep],
            self.frames[keep],
            self.lost[keep],
            [view for view, k in zip(self.source_view, keep, strict=True) if k],
            dict(self.metadata),
        )

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) tool positions in the world (NaN where lost)."""
        return self.poses[:, :3, 3]

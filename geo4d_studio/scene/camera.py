"""`Camera`: one recorded view's calibration (intrinsics, per-frame pose, image size)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, repr=False, eq=False)  # arrays: compare fields explicitly
class Camera:
    """A recorded camera. `K` (3, 3) pixels; `T_world_cam` (T, 4, 4) camera-to-world, OpenCV axes."""

    name: str
    K: np.ndarray
    T_world_cam: np.ndarray
    width: int
    height: int

    def __repr__(self) -> str:
        motion = "static" if self.is_static else "moving"
        return f"Camera({self.name!r}, {self.width}x{self.height}, fx={self.K[0, 0]:.1f}, {motion})"

    def pose(self, t: int) -> np.ndarray:
        """The (4, 4) camera-to-world transform at frame `t`."""
        return self.T_world_cam[t]

    @property
    def is_static(self) -> bool:
        """True when the camera does not move during the recording."""
        return bool(np.all(self.T_world_cam == self.T_world_cam[0]))

"""GUI-side shared state not (yet) in `Session`: the frames the next generation will cover."""

from __future__ import annotations

import numpy as np
from psygnal import Signal


class GenerationWindow:
    """Start (condition) frame, horizon (generated frames) and the model's frame stride.

    The next generation predicts recorded frames `start + stride * (1..horizon)`. The timeline and
    the generation panel both edit and display it; neither calls the other.
    """

    changed = Signal(int, int)  # start frame, horizon

    def __init__(self, start: int = 0, horizon: int = 10, stride: int = 1) -> None:
        self.start, self.horizon, self.stride = start, horizon, stride

    def set(self, start: int | None = None, horizon: int | None = None, stride: int | None = None) -> None:
        """Change any of start, horizon and stride; emits only on change."""
        new = (
            self.start if start is None else max(int(start), 0),
            self.horizon if horizon is None else max(int(horizon), 1),
            self.stride if stride is None else max(int(stride), 1),
        )
        if new != (self.start, self.horizon, self.stride):
            self.start, self.horizon, self.stride = new
            self.changed.emit(self.start, self.horizon)

    def frames(self, num_frames: int) -> np.ndarray:
        """Recorded frames the next generation covers, within a recording of `num_frames`."""
        indices = self.start + self.stride * np.arange(1, self.horizon + 1)
        return indices[indices < num_frames]

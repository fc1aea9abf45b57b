"""GUI-side shared state not (yet) in `Session`: the frame window a new generation should cover."""

from __future__ import annotations

from psygnal import Signal


class GenerationWindow:
    """Start frame and horizon (generated frames) chosen for the next generation.

    The timeline and the generation panel both edit and display it; neither calls the other.
    """

    changed = Signal(int, int)  # start frame, horizon

    def __init__(self, start: int = 0, horizon: int = 10) -> None:
        self.start = start
        self.horizon = horizon

    def set(self, start: int | None = None, horizon: int | None = None) -> None:
        """Change the start frame and/or horizon; emits only on change."""
        new = (
            self.start if start is None else max(int(start), 0),
            self.horizon if horizon is None else max(int(horizon), 1),
        )
        if new != (self.start, self.horizon):
            self.start, self.horizon = new
            self.changed.emit(*new)

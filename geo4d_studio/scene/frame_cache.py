"""A byte-bounded, thread-safe LRU cache of decoded frames (read-only numpy arrays)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np


class FrameCache:
    """Least-recently-used frames, at most `max_bytes` of them (0 disables caching)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        """The cached frame for `key` (now the most recently used), or None."""
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
            return frame

    def put(self, key: Hashable, frame: np.ndarray) -> None:
        """Cache `frame`, evicting the least recently used frames beyond the byte budget."""
        if frame.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._frames.pop(key, None)
            self.bytes += frame.nbytes - (0 if old is None else old.nbytes)
            self._frames[key] = frame
            while self.bytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self.bytes -= evicted.nbytes

    def clear(self) -> None:
        """Drop every frame."""
        with self._lock:
            self._frames.clear()
            self.bytes = 0

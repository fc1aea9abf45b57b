"""Decoded frames are cached per open scene: bounded in bytes, read-only, dropped on close."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import open_scene
from geo4d_studio.scene.frame_cache import FrameCache
from geo4d_studio.scene.synthetic import make_synthetic_scene


def test_cache_evicts_least_recently_used_frames_beyond_its_byte_budget():
    frame = np.zeros(100, np.uint8)
    cache = FrameCache(max_bytes=250)
    for key in "abc":
        cache.put(key, frame.copy())
    assert cache.get("a") is None and cache.bytes == 200  # "a" made room for "c"
    assert cache.get("b") is not None  # "b" is now the most recently used
    cache.put("d", frame.copy())
    assert cache.get("c") is None and cache.get("b") is not None and cache.get("d") is not None
    cache.put("huge", np.zeros(1000, np.uint8))  # larger than the budget: never cached
    assert cache.get("huge") is None and cache.bytes == 200
    cache.clear()
    assert cache.get("b") is None and cache.bytes == 0


def test_scene_frames_are_cached_read_only_and_dropped_on_close(tmp_path):
    path = make_synthetic_scene(tmp_path / "scene.h5", frames=3)
    scene = open_scene(path)
    cam = scene.camera_names[0]
    first = scene.rgb(cam, 1)
    assert scene.rgb(cam, 1) is first  # the second read is the cached frame
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0, 0] = 0
    depth = scene.depth(cam, 1)
    assert scene.depth(cam, 1) is depth and not depth.flags.writeable  # decoded once
    scene.close()
    with pytest.raises(SceneFormatError, match="cannot be read"):  # not served from the cache
        scene.rgb(cam, 1)

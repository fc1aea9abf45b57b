"""Shared fixtures: the shipped sample episodes and a generation made from a recording."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    """The shipped sample episodes (the suite needs them: they are part of the product)."""
    from geo4d_studio.paths import sample_scenes

    paths = sample_scenes()
    assert paths, "sample_data/ has no episodes"
    return paths


@pytest.fixture(scope="session")
def sample_path(sample_paths: list[Path]) -> Path:
    """The episode the Studio opens by default."""
    return sample_paths[0]


def generation_from_recording(scene, ref: str, other: str, start: int, frames: list[int]):
    """A Generation whose 'predictions' are the recorded frames: the oracle a perfect model would give."""
    from geo4d_studio.generation import Generation
    from geo4d_studio.geometry.camera import depth_to_pointmap, pointmap_to_depth
    from geo4d_studio.geometry.crossview import pointmap_to_frame

    cam_n, cam_m = scene.cameras[ref], scene.cameras[other]
    pm_n = np.stack([depth_to_pointmap(scene.depth(ref, t), cam_n.K) for t in frames])
    pm_m = np.stack([depth_to_pointmap(scene.depth(other, t), cam_m.K) for t in frames])
    pm_m_in_n = np.stack(
        [pointmap_to_frame(p, cam_m.pose(t), cam_n.pose(t)) for p, t in zip(pm_m, frames, strict=True)]
    )
    return Generation(
        id="",
        ref_camera=ref,
        other_camera=other,
        start_frame=start,
        frame_indices=np.asarray(frames),
        timestamps=scene.timestamps[frames],
        rgb_ref=np.stack([scene.rgb(ref, t) for t in frames]),
        rgb_other=np.stack([scene.rgb(other, t) for t in frames]),
        depth_ref=pointmap_to_depth(pm_n),
        pointmap_ref=pm_n,
        pointmap_other_in_ref=pm_m_in_n,
        pointmap_other=pm_m,
        depth_other=pointmap_to_depth(pm_m),
        K_ref=cam_n.K,
        K_other=cam_m.K,
        T_world_ref=cam_n.pose(start),
        T_world_other=cam_m.pose(start),
        params={"model": "recorded (oracle)", "steps": 0},
    )


@pytest.fixture
def oracle_generation():
    """Factory: `oracle_generation(scene, ref, other, start, frames)` → Generation of recorded frames."""
    return generation_from_recording

"""Shared fixtures: the shipped sample episodes and the recording packaged as a generation."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture
def oracle_generation():
    """Factory `oracle_generation(scene, ref, other, start, frames)`: recorded frames as a Generation."""
    from geo4d_studio.reference import recorded_clip

    return recorded_clip

"""Where the shipped assets live (sample episodes, default model, UI forms)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = REPO_ROOT / "sample_data"
DEFAULT_MODEL_DIR = REPO_ROOT / "model"
UI_DIR = REPO_ROOT / "ui"


def sample_scenes() -> list[Path]:
    """The shipped sample episodes, sorted by name."""
    return sorted(p for p in SAMPLE_DATA_DIR.glob("*.h5") if not p.name.endswith(".results.h5"))


def default_sample_scene() -> Path:
    """The episode the app opens when started without a file."""
    scenes = sample_scenes()
    if not scenes:
        raise FileNotFoundError(f"no sample episodes in {SAMPLE_DATA_DIR}")
    return scenes[0]


def repo_relative(path: Path) -> Path:
    """`path` relative to the repository when it lies inside it (for reports a reader can reproduce)."""
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path

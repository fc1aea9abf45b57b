"""Whole-file validation: the metadata checks of `open_scene` plus, with `full=True`, every pixel frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene.reader import Scene, inspect_file

MAX_PROBLEMS_PER_DATASET = 3


@dataclass(frozen=True)
class ValidationReport:
    """`problems` make the file unusable; `warnings` are non-fatal findings. Both are user-facing lines."""

    problems: list[str]
    warnings: list[str]

    @property
    def valid(self) -> bool:
        """True when there are no problems."""
        return not self.problems


def _scan_dataset(scene: Scene, cam: str, kind: str, problems: list[str]) -> list[int]:
    """Read every frame of one pixel dataset; returns the frames whose depth is all zero."""
    read = {"rgb": scene.rgb, "depth": scene.depth, "gripper_mask": scene.gripper_mask}[kind]
    failures: list[str] = []
    empty: list[int] = []
    for t in range(scene.num_frames):
        try:
            frame = read(cam, t)
        except SceneFormatError as err:
            failures.append(str(err))
            continue
        if kind == "depth" and not frame.any():
            empty.append(t)
    problems.extend(failures[:MAX_PROBLEMS_PER_DATASET])
    if len(failures) > MAX_PROBLEMS_PER_DATASET:
        extra = len(failures) - MAX_PROBLEMS_PER_DATASET
        problems.append(f"{scene.path}: /cameras/{cam}/{kind}: {extra} more frames with problems")
    return empty


def _scan_pixels(scene: Scene) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    for cam in scene.camera_names:
        kinds = ("rgb", "depth", "gripper_mask") if scene.has_gripper_mask(cam) else ("rgb", "depth")
        for kind in kinds:
            empty = _scan_dataset(scene, cam, kind, problems)
            if empty:
                shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
                warnings.append(
                    f"camera {cam}: depth is all zero in {len(empty)} of {scene.num_frames} frames ({shown})"
                )
    return problems, warnings


def check_scene(path: str | Path, *, full: bool = False) -> ValidationReport:
    """Validate a recording; `full=True` also reads every pixel frame (NaN/inf depth, corrupt chunks)."""
    try:
        h5, metadata, found = inspect_file(path)
    except SceneFormatError as err:
        return ValidationReport(problems=[str(err)], warnings=[])
    h5.close()
    if metadata is None or not full:
        return ValidationReport(problems=[str(p) for p in found.problems], warnings=found.warnings)
    with Scene(path) as scene:
        problems, warnings = _scan_pixels(scene)
    return ValidationReport(problems=problems, warnings=[*found.warnings, *warnings])


def validate_scene(path: str | Path, *, full: bool = False) -> list[str]:
    """The problems of a recording, one user-facing line each; empty when it is valid."""
    return check_scene(path, full=full).problems

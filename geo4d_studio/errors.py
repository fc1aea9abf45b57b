"""User-facing errors: each message names the file and the field that is wrong."""

from __future__ import annotations

from pathlib import Path


class Geo4DError(Exception):
    """Base class for errors caused by user input; the CLI prints them as one line (exit code 2)."""


class SceneFormatError(Geo4DError):
    """A recording (or results file) is malformed: names the file, the dataset path and the problem."""

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        self.path, self.field, self.problem = Path(path), field, problem
        super().__init__(f"{self.path}: {field}: {problem}")


class CheckpointError(Geo4DError):
    """A model checkpoint folder is missing a file, has wrong shapes or uses a forbidden format."""

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        self.path, self.field, self.problem = Path(path), field, problem
        super().__init__(f"{self.path}: {field}: {problem}")


class OutputPathError(Geo4DError):
    """An output path cannot be written (exists without overwrite, not a directory, not writable)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{self.path}: {problem}")

"""Atomic file writes: write to a temporary file beside the target, then rename it into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geo4d_studio.errors import OutputPathError


def check_writable(path: str | Path, *, overwrite: bool = False) -> Path:
    """Return `path` as a Path after checking it can be (over)written; raise OutputPathError if not."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(path, "is a directory, expected a file path")
    if path.exists() and not overwrite:
        raise OutputPathError(path, "already exists (pass --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(path, f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(path, f"directory {parent} is not writable")
    return path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which would race with worker threads
# creating files while the mask is briefly 0.
_FILE_MODE = 0o666 & ~_read_umask()


@contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it."""
    path = check_writable(path, overwrite=overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputPathError(path, f"cannot create a file there ({err.strerror})") from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

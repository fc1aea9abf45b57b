"""Point clouds as PLY: binary little-endian x, y, z float32 + red, green, blue uchar; atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.errors import OutputPathError, SceneFormatError

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_VERTEX_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray, overwrite: bool = False) -> Path:
    """Write points (N, 3) and colours (N, 3) uint8 as a binary little-endian PLY; returns the path."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    vertices = np.empty(len(points), dtype=_VERTEX_DTYPE)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = colors[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment geo4d-studio point cloud (metres, world frame)\n"
        f"element vertex {len(points)}\n"
        + "".join(f"property {'float' if c in 'xyz' else 'uchar'} {c}\n" for c in _VERTEX_DTYPE.names)
        + "end_header\n"
    )
    path = Path(path)
    try:
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(vertices.tobytes())
    except OSError as err:  # e.g. disk full, or a directory that refuses new files
        raise OutputPathError(path, f"cannot be written ({err.strerror or err})") from err
    return path


def _parse_header(path: Path, f) -> tuple[str, int, np.dtype]:
    """Format, vertex count and vertex dtype from a PLY header (vertex must be the first element)."""
    if f.readline().strip() != b"ply":
        raise SceneFormatError(path, "header", "not a PLY file (missing 'ply' magic line)")
    fmt, count, fields, element = "", -1, [], None
    for raw in iter(f.readline, b""):
        words = raw.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                count = int(words[2])
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list" or words[1] not in _PLY_TYPES:
                raise SceneFormatError(path, f"property {words[-1]}", f"unsupported type {words[1]}")
            fields.append((words[2], _PLY_TYPES[words[1]]))
    else:
        raise SceneFormatError(path, "header", "no end_header line")
    if count < 0:
        raise SceneFormatError(path, "element vertex", "missing")
    if fmt not in ("binary_little_endian", "ascii"):
        raise SceneFormatError(path, "format", f"unsupported PLY format {fmt!r}")
    byte_order = "<" if fmt == "binary_little_endian" else "="
    return fmt, count, np.dtype([(name, byte_order + code) for name, code in fields])


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N, 3) float32 and colours (N, 3) uint8 (None without colour) from a PLY file."""
    path = Path(path)
    with open(path, "rb") as f:
        fmt, count, dtype = _parse_header(path, f)
        if fmt == "ascii":
            table = np.loadtxt(f, max_rows=count, ndmin=2)
            vertices = np.empty(count, dtype=dtype)
            for i, name in enumerate(dtype.names):
                vertices[name] = table[:, i]
        else:
            data = f.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise SceneFormatError(path, "vertex", f"file ends early: expected {count} vertices")
            vertices = np.frombuffer(data, dtype=dtype)
    missing = [c for c in "xyz" if c not in dtype.names]
    if missing:
        raise SceneFormatError(path, "element vertex", f"no property {missing[0]}")
    points = np.stack([vertices[c] for c in "xyz"], axis=1).astype(np.float32)
    if all(c in dtype.names for c in ("red", "green", "blue")):
        return points, np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return points, None

"""A small Wavefront OBJ reader: vertex positions and triangulated faces, nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geo4d_studio.errors import Geo4DError


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read `v` and `f` records; polygons are fan-triangulated, negative (relative) indices resolved.

    Returns vertices (V, 3) float32 and faces (F, 3) int32 (0-based). Texture/normal indices are ignored.
    """
    path = Path(path)
    vertices: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                vertices.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                idx = [int(p.split("/")[0]) for p in parts[1:]]
                idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
                faces.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
        except ValueError as err:
            raise Geo4DError(f"{path}: line {line_no}: cannot parse {parts[0]!r} record ({err})") from None
    verts = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    tris = np.asarray(faces, dtype=np.int32).reshape(-1, 3)
    if tris.size and (tris.min() < 0 or tris.max() >= len(verts)):
        raise Geo4DError(f"{path}: face indices out of range (file has {len(verts)} vertices)")
    return verts, tris


def merge_meshes(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate meshes into one, offsetting each part's face indices."""
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([v for v, _ in parts]).astype(np.float32)
    faces = np.concatenate([f + o for (_, f), o in zip(parts, offsets, strict=True)]).astype(np.int32)
    return vertices, faces

"""A generated 4D clip (RGB-D and pointmaps of two views) and the results file that keeps them.

The results file is `<recording stem>.results.h5` beside the recording (which is never modified):
`/generations/<id>/` holds one group per generation with the arrays of `Generation` as datasets and
`params` as a JSON attribute.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

import h5py
import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.errors import SceneFormatError

RESULTS_FORMAT = "geo4d-results"
_SCALARS = ("id", "ref_camera", "other_camera", "start_frame")


@dataclass
class Generation:
    """Predicted future RGB-D of reference view n and second view m (metres, OpenCV camera frames).

    Shapes: frame_indices/timestamps (F,), rgb_* (F, H, W, 3) uint8, depth_* (F, H, W) float32,
    pointmap_* (F, H, W, 3) float32 (invalid pixels all zero), K_* (3, 3), T_world_* (4, 4) at the
    start frame. `pointmap_other_in_ref` is the model's output for view m, in view n's camera frame;
    `pointmap_other` / `depth_other` are the same points moved into m's own frame with the recorded
    extrinsics.
    """

    id: str
    ref_camera: str
    other_camera: str
    start_frame: int
    frame_indices: np.ndarray
    timestamps: np.ndarray
    rgb_ref: np.ndarray
    rgb_other: np.ndarray
    depth_ref: np.ndarray
    pointmap_ref: np.ndarray
    pointmap_other_in_ref: np.ndarray
    pointmap_other: np.ndarray
    depth_other: np.ndarray
    K_ref: np.ndarray
    K_other: np.ndarray
    T_world_ref: np.ndarray
    T_world_other: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Number of generated frames F."""
        return len(self.frame_indices)

    def frame_slot(self, frame: int) -> int | None:
        """Index into the generated arrays for recorded frame `frame`, or None if not covered."""
        hits = np.flatnonzero(self.frame_indices == frame)
        return int(hits[0]) if hits.size else None


def _array_fields() -> list[str]:
    return [f.name for f in fields(Generation) if f.name not in (*_SCALARS, "params")]


def results_path_for(scene_path: str | Path) -> Path:
    """The results file that belongs to a recording: `<stem>.results.h5` beside it."""
    scene_path = Path(scene_path)
    return scene_path.with_name(f"{scene_path.stem}.results.h5")


def _open_results(path: Path) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise SceneFormatError(path, "/", f"not a readable results file ({err})") from err
    if f.attrs.get("format") != RESULTS_FORMAT:
        f.close()
        raise SceneFormatError(path, "/", f"attribute format is not {RESULTS_FORMAT!r}")
    return f


def list_generations(results_path: str | Path) -> list[dict]:
    """Id, cameras, frames and parameters of every saved generation (no pixel data), oldest first."""
    with _open_results(Path(results_path)) as f:
        group = f.get("generations", {})
        return [
            {
                "id": gen_id,
                "ref_camera": str(g.attrs["ref_camera"]),
                "other_camera": str(g.attrs["other_camera"]),
                "start_frame": int(g.attrs["start_frame"]),
                "frame_indices": g["frame_indices"][()],
                "params": json.loads(g.attrs["params"]),
            }
            for gen_id, g in sorted(group.items())
        ]


def load_generation(results_path: str | Path, gen_id: str) -> Generation:
    """Read one generation back; raises SceneFormatError naming the missing or broken field."""
    results_path = Path(results_path)
    with _open_results(results_path) as f:
        key = f"/generations/{gen_id}"
        if key not in f:
            raise SceneFormatError(results_path, key, "no such generation")
        g = f[key]
        values = {}
        for name in _array_fields():
            if name not in g:
                raise SceneFormatError(results_path, f"{key}/{name}", "missing")
            values[name] = g[name][()]
        return Generation(
            id=gen_id,
            ref_camera=str(g.attrs["ref_camera"]),
            other_camera=str(g.attrs["other_camera"]),
            start_frame=int(g.attrs["start_frame"]),
            params=json.loads(g.attrs["params"]),
            **values,
        )


def _next_id(f: h5py.File) -> str:
    taken = set(f.get("generations", {}).keys())
    n = len(taken) + 1
    while f"gen-{n:04d}" in taken:
        n += 1
    return f"gen-{n:04d}"


def save_generation(results_path: str | Path, generation: Generation) -> str:
    """Add a generation to the results file atomically (copy, append, rename); returns its id.

    An empty `generation.id` gets the next free `gen-NNNN`; an existing id is an error.
    """
    results_path = Path(results_path)
    with atomic_path(results_path, overwrite=True) as tmp:
        if results_path.exists():
            _open_results(results_path).close()
            shutil.copyfile(results_path, tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs["format"] = RESULTS_FORMAT
            gen_id = generation.id or _next_id(f)
            key = f"generations/{gen_id}"
            if key in f:
                raise SceneFormatError(results_path, f"/{key}", "a generation with this id exists")
            g = f.create_group(key)
            for name in ("ref_camera", "other_camera"):
                g.attrs[name] = getattr(generation, name)
            g.attrs["start_frame"] = int(generation.start_frame)
            g.attrs["params"] = json.dumps(generation.params, default=str)
            for name in _array_fields():
                data = np.asarray(getattr(generation, name))
                chunks = (1, *data.shape[1:]) if data.ndim >= 3 else None
                g.create_dataset(name, data=data, chunks=chunks, compression="gzip" if chunks else None)
    generation.id = gen_id
    return gen_id

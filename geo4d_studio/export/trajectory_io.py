"""Read and write gripper trajectories as CSV, JSON, NPZ or TUM (units m, s; quaternions x, y, z, w).

Poses are `T_world_tool` (tool frame in a z-up world; cameras are OpenCV). Lost frames keep NaN
poses in CSV, JSON (as null) and NPZ; TUM has no way to say "lost", so lost frames are omitted there
(and gripper width, confidence and frame indices are not stored: TUM holds `t tx ty tz qx qy qz qw`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.errors import Geo4DError, SceneFormatError
from geo4d_studio.geometry.se3 import from_quat_xyzw, to_quat_xyzw
from geo4d_studio.trajectory import Trajectory

TRAJECTORY_FORMAT = "geo4d-trajectory"
FRAME_CONVENTION = "T_world_tool, OpenCV cameras, z-up world"
QUATERNION_ORDER = "xyzw"
CSV_COLUMNS = ("timestamp", "x", "y", "z", "qx", "qy", "qz", "qw", "gripper_width", "confidence", "frame")
CSV_EXTRA_COLUMNS = ("lost", "source_view")
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".npz": "npz", ".txt": "tum", ".tum": "tum"}
FORMATS = ("csv", "json", "npz", "tum")


def format_for_path(path: str | Path, fmt: str | None = None) -> str:
    """The trajectory format: `fmt` if given, else from the file suffix (.csv .json .npz .txt/.tum)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise Geo4DError(f"{path}: unknown trajectory format {fmt!r} (choose from {', '.join(FORMATS)})")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise Geo4DError(
            f"{path}: cannot tell the trajectory format from suffix {suffix!r} "
            f"(use one of {', '.join(_SUFFIX_FORMATS)})"
        )
    return _SUFFIX_FORMATS[suffix]


def poses_to_tq(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) poses -> translations (N, 3) and quaternions (N, 4) xyzw; NaN rows stay NaN."""
    poses = np.asarray(poses, dtype=np.float64)
    t = poses[:, :3, 3].copy()
    q = np.full((len(poses), 4), np.nan)
    ok = np.isfinite(poses).all(axis=(1, 2))
    if ok.any():
        q[ok] = to_quat_xyzw(poses[ok])[1]
    return t, q


def tq_to_poses(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Translations (N, 3) and quaternions (N, 4) xyzw -> (N, 4, 4) poses; rows with NaN become NaN."""
    t, q = np.asarray(t, dtype=np.float64), np.asarray(q, dtype=np.float64)
    poses = np.full((len(t), 4, 4), np.nan)
    ok = np.isfinite(t).all(axis=1) & np.isfinite(q).all(axis=1)
    if ok.any():
        poses[ok] = from_quat_xyzw(t[ok], q[ok])
    return poses


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _header_metadata(traj: Trajectory) -> dict:
    return {
        "format": TRAJECTORY_FORMAT,
        "version": 1,
        "units": "m",
        "frame_convention": FRAME_CONVENTION,
        "quaternion_order": QUATERNION_ORDER,
        "metadata": traj.metadata,
    }


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _write_csv(traj: Trajectory, tmp: Path) -> None:
    t, q = poses_to_tq(traj.poses)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS + CSV_EXTRA_COLUMNS)
        for i in range(len(traj)):
            floats = (traj.timestamps[i], *t[i], *q[i], traj.gripper_width[i], traj.confidence[i])
            writer.writerow(
                [repr(float(v)) for v in floats]
                + [int(traj.frames[i]), int(traj.lost[i]), traj.source_view[i]]
            )


def _write_json(traj: Trajectory, tmp: Path) -> None:
    t, q = poses_to_tq(traj.poses)
    doc = _header_metadata(traj)
    doc["frames"] = [
        {
            "timestamp": float(traj.timestamps[i]),
            "frame": int(traj.frames[i]),
            "position": None if traj.lost[i] else [float(v) for v in t[i]],
            "quat_xyzw": None if traj.lost[i] else [float(v) for v in q[i]],
            "gripper_width": _num(traj.gripper_width[i]),
            "confidence": _num(traj.confidence[i]),
            "lost": bool(traj.lost[i]),
            "source_view": traj.source_view[i],
        }
        for i in range(len(traj))
    ]
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default, allow_nan=False), encoding="utf-8")


def _write_npz(traj: Trajectory, tmp: Path) -> None:
    header = json.dumps(_header_metadata(traj), default=_json_default)
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            timestamps=traj.timestamps,
            poses=traj.poses,
            gripper_width=traj.gripper_width,
            confidence=traj.confidence,
            frames=traj.frames,
            lost=traj.lost,
            source_view=np.array(traj.source_view, dtype=np.str_).reshape(len(traj)),
            header=np.array(header, dtype=np.str_),
        )


def _write_tum(traj: Trajectory, tmp: Path) -> None:
    t, q = poses_to_tq(traj.poses)
    keep = ~traj.lost & np.isfinite(t).all(axis=1)
    rows = np.column_stack([traj.timestamps, t, q])[keep]
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"# geo4d-studio trajectory ({FRAME_CONVENTION}); lost frames omitted\n")
        f.write("# timestamp tx ty tz qx qy qz qw\n")
        np.savetxt(f, rows, fmt="%.9f")


_WRITERS = {"csv": _write_csv, "json": _write_json, "npz": _write_npz, "tum": _write_tum}


def write_trajectory(
    traj: Trajectory, path: str | Path, fmt: str | None = None, *, overwrite: bool = False
) -> Path:
    """Write `traj` atomically in `fmt` (default: from the suffix); refuses to replace a file unless
    `overwrite`. Returns the path written."""
    path = Path(path)
    fmt = format_for_path(path, fmt)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _WRITERS[fmt](traj, tmp)
    return path


def _parse_float(path: Path, field: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SceneFormatError(path, field, f"{text!r} is not a number") from None


def _poses(path: Path, t: np.ndarray, q: np.ndarray) -> np.ndarray:
    try:
        return tq_to_poses(t, q)
    except ValueError as err:
        raise SceneFormatError(path, "qx,qy,qz,qw", f"invalid quaternion ({err})") from None


def _read_csv(path: Path) -> Trajectory:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0][: len(CSV_COLUMNS)]) != CSV_COLUMNS:
        raise SceneFormatError(path, "header", f"expected columns {','.join(CSV_COLUMNS)}")
    header = rows[0]
    body = [r for r in rows[1:] if r]
    columns: dict[str, list[str]] = {name: [] for name in header}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise SceneFormatError(path, f"line {line}", f"{len(row)} values, expected {len(header)}")
        for name, text in zip(header, row, strict=True):
            columns[name].append(text)

    def floats(name: str) -> np.ndarray:
        return np.array(
            [_parse_float(path, f"line {i + 2}: {name}", v) for i, v in enumerate(columns[name])],
            dtype=np.float64,
        ).reshape(len(body))

    t = np.column_stack([floats(c) for c in ("x", "y", "z")]).reshape(-1, 3)
    q = np.column_stack([floats(c) for c in ("qx", "qy", "qz", "qw")]).reshape(-1, 4)
    poses = tq_to_poses(t, q)
    lost = floats("lost").astype(bool) if "lost" in columns else ~np.isfinite(poses).all(axis=(1, 2))
    return Trajectory(
        timestamps=floats("timestamp"),
        poses=poses,
        gripper_width=floats("gripper_width"),
        confidence=floats("confidence"),
        frames=floats("frame").astype(np.int64),
        lost=lost,
        source_view=columns.get("source_view", [""] * len(body)),
    )


def _read_json(path: Path) -> Trajectory:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SceneFormatError(path, "/", f"not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != TRAJECTORY_FORMAT:
        raise SceneFormatError(path, "format", f"expected {TRAJECTORY_FORMAT!r}")
    frames = doc.get("frames")
    if not isinstance(frames, list):
        raise SceneFormatError(path, "frames", "missing or not a list")
    nan3, nan4 = [math.nan] * 3, [math.nan] * 4
    try:
        t = np.array([f["position"] or nan3 for f in frames], dtype=np.float64).reshape(-1, 3)
        q = np.array([f["quat_xyzw"] or nan4 for f in frames], dtype=np.float64).reshape(-1, 4)
        return Trajectory(
            timestamps=[f["timestamp"] for f in frames],
            poses=tq_to_poses(t, q),
            gripper_width=[math.nan if f["gripper_width"] is None else f["gripper_width"] for f in frames],
            confidence=[math.nan if f["confidence"] is None else f["confidence"] for f in frames],
            frames=[f["frame"] for f in frames],
            lost=[f["lost"] for f in frames],
            source_view=[f["source_view"] for f in frames],
            metadata=doc.get("metadata", {}),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise SceneFormatError(path, "frames", f"malformed entry ({err!r})") from None


_NPZ_ARRAYS = (
    "timestamps",
    "poses",
    "gripper_width",
    "confidence",
    "frames",
    "lost",
    "source_view",
    "header",
)


def _read_npz(path: Path) -> Trajectory:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SceneFormatError(path, "/", f"not a readable NPZ file ({err})") from None
    with data:
        for name in _NPZ_ARRAYS:
            if name not in data.files:
                raise SceneFormatError(path, name, "missing")
        arrays = {name: data[name] for name in _NPZ_ARRAYS}
    header = json.loads(str(arrays.pop("header")))
    try:
        return Trajectory(
            **{k: v for k, v in arrays.items() if k != "source_view"},
            source_view=[str(s) for s in arrays["source_view"]],
            metadata=header.get("metadata", {}),
        )
    except ValueError as err:
        raise SceneFormatError(path, "/", str(err)) from None


def _read_tum(path: Path) -> Trajectory:
    try:
        rows = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise SceneFormatError(path, "/", f"not a TUM trajectory ({err})") from None
    if rows.size == 0:
        rows = rows.reshape(0, 8)
    if rows.shape[1] != 8:
        raise SceneFormatError(
            path, "columns", f"{rows.shape[1]} per line, expected 8 (t tx ty tz qx qy qz qw)"
        )
    n = len(rows)
    return Trajectory(
        timestamps=rows[:, 0],
        poses=_poses(path, rows[:, 1:4], rows[:, 4:8]),
        gripper_width=np.full(n, np.nan),
        confidence=np.full(n, np.nan),
        frames=np.arange(n),
        lost=np.zeros(n, dtype=bool),
        source_view=[""] * n,
        metadata={"note": "read from TUM: gripper width, confidence and frame indices are not stored"},
    )


_READERS = {"csv": _read_csv, "json": _read_json, "npz": _read_npz, "tum": _read_tum}


def read_trajectory(path: str | Path, fmt: str | None = None) -> Trajectory:
    """Read a trajectory written by `write_trajectory` (TUM files from other tools too)."""
    path = Path(path)
    fmt = format_for_path(path, fmt)
    if not path.is_file():
        raise SceneFormatError(path, "/", "no such file")
    return _READERS[fmt](path)

"""Export a generation: comparison MP4 per view, an HDF5 scene that opens like a recording, PLY clouds.

No torch here; MP4 goes through imageio-ffmpeg, HDF5 through `geo4d_studio.scene.SceneWriter`, PLY
through `geo4d_studio.export.ply.write_ply`. Every write is atomic and refuses to replace a file
unless `overwrite=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path, check_writable
from geo4d_studio.errors import Geo4DError, SceneFormatError
from geo4d_studio.export.ply import write_ply
from geo4d_studio.generation import Generation, results_path_for
from geo4d_studio.geometry.se3 import transform_points

VIEWS = ("ref", "other")
_COLORMAP = np.array(  # anchors of a perceptually ordered map (near = yellow, far = dark blue)
    [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]], dtype=np.float32
)


def colorize_depth(depth: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 colour; invalid (<= 0) pixels black."""
    s = np.clip((depth - near_m) / max(far_m - near_m, 1e-6), 0.0, 1.0) * (len(_COLORMAP) - 1)
    lo = np.minimum(s.astype(np.int64), len(_COLORMAP) - 2)
    frac = (s - lo)[..., None]
    rgb = _COLORMAP[lo] * (1 - frac) + _COLORMAP[lo + 1] * frac
    rgb[depth <= 0] = 0
    return rgb.astype(np.uint8)


def _check_view(generation: Generation, view: str) -> str:
    if view not in VIEWS:
        raise Geo4DError(f"generation {generation.id}: view {view!r} is not one of {', '.join(VIEWS)}")
    return generation.ref_camera if view == "ref" else generation.other_camera


def _check_finite(scene_path: Path, generation: Generation, names: Sequence[str]) -> None:
    """SceneFormatError naming the results file and field if a generated array has NaN/inf."""
    for name in names:
        data = getattr(generation, name)
        bad = ~np.isfinite(data)
        if bad.any():
            frame = int(np.flatnonzero(bad.reshape(len(data), -1).any(axis=1))[0])
            raise SceneFormatError(
                results_path_for(scene_path),
                f"/generations/{generation.id}/{name}",
                f"frame {frame} has {int(bad[frame].sum())} NaN/inf values",
            )


def comparison_frames(scene, generation: Generation, view: str = "ref", *, with_depth: bool = True):
    """Yield (H', W', 3) uint8 frames: recorded | generated RGB, and below them the two depths
    colour-mapped on a shared range (when `with_depth`)."""
    camera = _check_view(generation, view)
    gen_rgb = generation.rgb_ref if view == "ref" else generation.rgb_other
    gen_depth = generation.depth_ref if view == "ref" else generation.depth_other
    valid = gen_depth[gen_depth > 0]
    near, far = (np.percentile(valid, [1, 99]) if valid.size else (0.0, 1.0)) if with_depth else (0, 0)
    for i, frame in enumerate(generation.frame_indices):
        top = np.concatenate([scene.rgb(camera, int(frame)), gen_rgb[i]], axis=1)
        if not with_depth:
            yield top
            continue
        depths = [scene.depth(camera, int(frame)), gen_depth[i]]
        bottom = np.concatenate([colorize_depth(d, near, far) for d in depths], axis=1)
        yield np.concatenate([top, bottom], axis=0)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height and width (yuv420p needs them)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def write_comparison_mp4(
    scene,
    generation: Generation,
    path: str | Path,
    view: str = "ref",
    *,
    fps: float | None = None,
    with_depth: bool = True,
    overwrite: bool = False,
) -> Path:
    """H.264 MP4 of one view: recorded and generated side by side (depth colour-mapped below).
    `fps` defaults to the recording's frame rate divided by the generation's frame stride."""
    import imageio_ffmpeg

    path = Path(path)
    _check_view(generation, view)
    _check_finite(scene.path, generation, ("depth_ref" if view == "ref" else "depth_other",))
    if fps is None:
        stride = np.diff(generation.frame_indices)
        fps = scene.fps / float(stride.mean()) if stride.size else scene.fps
    frames = (_pad_even(f) for f in comparison_frames(scene, generation, view, with_depth=with_depth))
    first = next(frames)
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (first.shape[1], first.shape[0]),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            output_params=["-f", "mp4"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        try:
            writer.send(np.ascontiguousarray(first))
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()
    return path


def write_generation_scene(
    scene, generation: Generation, path: str | Path, *, overwrite: bool = False
) -> Path:
    """The generation as a `geo4d-scene` file with its two views (generated RGB-D, recorded
    calibration at the start frame), so it opens like a recording. It has no /robot group: the
    generated frames have no ground-truth tool poses."""
    from geo4d_studio.scene import SceneWriter

    _check_finite(scene.path, generation, ("depth_ref", "depth_other"))
    source = f"generation {generation.id} of {Path(scene.path).name} (start frame {generation.start_frame})"
    with SceneWriter(
        path, fps=_generation_fps(scene, generation), timestamps=generation.timestamps, task=scene.task,
        source=source, overwrite=overwrite,
    ) as writer:  # fmt: skip
        writer.add_camera(
            generation.ref_camera,
            generation.K_ref,
            generation.T_world_ref,
            generation.rgb_ref,
            generation.depth_ref,
        )
        writer.add_camera(
            generation.other_camera,
            generation.K_other,
            generation.T_world_other,
            generation.rgb_other,
            generation.depth_other,
        )
    return Path(path)


def _generation_fps(scene, generation: Generation) -> float:
    stride = np.diff(generation.frame_indices)
    return scene.fps / float(stride.mean()) if stride.size else scene.fps


def generation_cloud(
    generation: Generation, index: int, views: Sequence[str] = VIEWS
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) float32 and colours (N, 3) uint8 of generated frame `index` from `views`
    (each view's pointmap in its own camera frame, moved with the recorded extrinsics)."""
    points, colors = [], []
    for view in views:
        _check_view(generation, view)
        pm = (generation.pointmap_ref if view == "ref" else generation.pointmap_other)[index]
        rgb = (generation.rgb_ref if view == "ref" else generation.rgb_other)[index]
        T = generation.T_world_ref if view == "ref" else generation.T_world_other
        valid = pm[..., 2] > 0
        points.append(transform_points(T, pm[valid]).astype(np.float32))
        colors.append(rgb[valid])
    return np.concatenate(points), np.concatenate(colors)


def ply_sequence_paths(path: str | Path, frames: Sequence[int]) -> list[Path]:
    """One path per frame: `path` itself for a single frame, else `<stem>_<frame:04d>.ply` beside it."""
    path = Path(path)
    if len(frames) == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{int(f):04d}{path.suffix or '.ply'}") for f in frames]


def write_generation_ply(
    scene,
    generation: Generation,
    path: str | Path,
    *,
    indices: Sequence[int] | None = None,
    views: Sequence[str] = VIEWS,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Fused world clouds of generated frames `indices` (default all) as PLY (see `ply_sequence_paths`).
    All target paths are checked before anything is written; `progress(done, total)` after each file."""
    _check_finite(scene.path, generation, ("pointmap_ref", "pointmap_other"))
    indices = list(range(generation.num_frames)) if indices is None else [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < generation.num_frames]
    if bad:
        raise Geo4DError(
            f"generation {generation.id}: frame index {bad[0]} out of range 0..{generation.num_frames - 1}"
        )
    paths = ply_sequence_paths(path, [generation.frame_indices[i] for i in indices])
    for p in paths:
        check_writable(p, overwrite=overwrite)
    for done, (i, p) in enumerate(zip(indices, paths, strict=True), start=1):
        write_ply(p, *generation_cloud(generation, i, views), overwrite=overwrite)
        if progress is not None:
            progress(done, len(paths))
    return paths


def write_recorded_ply(
    scene,
    path: str | Path,
    frames: Sequence[int],
    *,
    cameras: Sequence[str] | None = None,
    voxel_m: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Fused world clouds of recorded frames as PLY (see `ply_sequence_paths`); all target paths are
    checked before anything is written; `progress(done, total)` after each file."""
    from geo4d_studio.geometry.fusion import fuse_frame

    paths = ply_sequence_paths(path, frames)
    for p in paths:
        check_writable(p, overwrite=overwrite)
    for done, (t, p) in enumerate(zip(frames, paths, strict=True), start=1):
        write_ply(p, *fuse_frame(scene, int(t), cameras, voxel_m), overwrite=overwrite)
        if progress is not None:
            progress(done, len(paths))
    return paths

"""Evaluation on held-out cameras: image quality, depth, cross-view geometry, optional FVD.

For each (episode, held-out camera pair n/m, start frame) the pipeline predicts the future of both views
from the start frame; predictions are compared with the recording at the predicted frames, at the
recording's resolution:

- PSNR and SSIM of view n and view m (metrics.image);
- AbsRel and δ1 (< 1.25) of view n's depth (z of `pointmap_ref`) and of view m's points in view n's
  frame (z of `pointmap_other_in_ref` against the recorded view-m pointmap moved into n's frame), over
  pixels where both are valid (metrics.depth);
- gripper mIoU (metrics.crossview): m→n lifts view m's recorded gripper mask with the predicted
  `pointmap_other_in_ref` (already in n's frame) and projects it into view n; n→m lifts view n's mask
  with `pointmap_ref` and moves it into view m with the recorded extrinsics;
- FVD per view over all pairs, only with a user-supplied I3D checkpoint (otherwise "not computed").

The same pairs are used for every model, so columns of one report are comparable. The optional
baseline column scores the trivial prediction "nothing moves": the recorded condition frame of both
views repeated for every future frame. A model that does not beat it has not learnt the motion. The
optional autoencoders column scores the recorded future encoded and decoded by the first model's VAEs
(`Geo4DPipeline.reconstruct`): the closest any denoiser of that model can come to the recording.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path, check_writable
from geo4d_studio.diffusion.dataset import MIN_CAMERAS, episode_paths, split_cameras
from geo4d_studio.errors import Geo4DError, OutputPathError, SceneFormatError

ClipCallback = Callable[[str, int, int], None]  # (column name, clips scored by all columns, of total)

METRICS: dict[str, str] = {
    "psnr_n": "PSNR view n (dB) ↑",
    "psnr_m": "PSNR view m (dB) ↑",
    "ssim_n": "SSIM view n ↑",
    "ssim_m": "SSIM view m ↑",
    "absrel_n": "AbsRel depth n ↓",
    "delta1_n": "δ1 depth n ↑",
    "absrel_m": "AbsRel m in n's frame ↓",
    "delta1_m": "δ1 m in n's frame ↑",
    "miou_m_to_n": "gripper mIoU m→n ↑",
    "miou_n_to_m": "gripper mIoU n→m ↑",
}
FVD_KEYS = ("fvd_n", "fvd_m")
NOT_COMPUTED = "not computed"
BASELINE_NAME = "repeat condition frame"
AUTOENCODERS_NAME = "autoencoders only (recorded future)"


@dataclass(frozen=True)
class EvalPair:
    """One evaluation clip: episode file, held-out cameras n (ref) and m (other), start frame."""

    episode: Path
    ref: str
    other: str
    start: int


@dataclass
class ModelResult:
    """Per-pair metrics of one model, its FVD per view (None = not computed) and timing."""

    name: str
    model_dir: str
    pairs: list[tuple[EvalPair, dict[str, float]]] = field(default_factory=list)
    fvd: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(FVD_KEYS))
    seconds_per_clip: float = float("nan")

    def mean(self, key: str) -> float:
        """Mean of metric `key` over pairs, ignoring NaN (pairs where it is undefined)."""
        values = np.array([m[key] for _, m in self.pairs], dtype=np.float64)
        finite = values[~np.isnan(values)]
        return float(finite.mean()) if finite.size else float("nan")


def held_out_pairs(paths: list[Path], count: int, span: int, seed: int = 0) -> list[EvalPair]:
    """`count` distinct clips cycling over the episodes: a random ordered pair of held-out cameras and
    a start frame leaving room for `span` more frames, drawn reproducibly from `seed`. A repeated clip
    would count twice in the paired intervals, so one is redrawn; Geo4DError when an episode has fewer
    distinct clips than it is asked for."""
    from geo4d_studio.scene import open_scene

    info = []
    for path in paths:
        with open_scene(path) as scene:
            names, frames = list(scene.camera_names), scene.num_frames
        if len(names) < MIN_CAMERAS:
            raise SceneFormatError(
                path, "/cameras", f"has {len(names)} cameras; evaluation needs at least {MIN_CAMERAS}"
            )
        if frames <= span:
            raise SceneFormatError(
                path, "/timestamps", f"has {frames} frames; a clip needs at least {span + 1}"
            )
        info.append((path, split_cameras(names)[1], frames))
    for k, (path, held_out, frames) in enumerate(info):
        distinct = len(held_out) * (len(held_out) - 1) * (frames - span)
        if len(range(k, count, len(info))) > distinct:
            raise Geo4DError(f"--pairs {count}: {path} has only {distinct} distinct held-out clips")
    rng = np.random.default_rng(seed)
    pairs: list[EvalPair] = []
    for i in range(count):
        path, held_out, frames = info[i % len(info)]
        pair = None
        while pair is None or pair in pairs:
            ref, other = rng.choice(held_out, size=2, replace=False)
            pair = EvalPair(path, str(ref), str(other), int(rng.integers(frames - span)))
        pairs.append(pair)
    return pairs


def clip_metrics(scene, gen, max_depth_m: float) -> dict[str, float]:
    """All per-clip metrics of a Generation `gen` against the recording `scene` at `gen.frame_indices`."""
    from geo4d_studio.geometry.camera import depth_to_pointmap
    from geo4d_studio.geometry.crossview import pointmap_to_frame
    from geo4d_studio.geometry.se3 import compose, invert
    from geo4d_studio.metrics.crossview import gripper_miou
    from geo4d_studio.metrics.depth import abs_rel, delta1
    from geo4d_studio.metrics.image import psnr, ssim

    frames = [int(t) for t in gen.frame_indices]
    cam_n, cam_m = scene.cameras[gen.ref_camera], scene.cameras[gen.other_camera]

    def recorded_depth(cam: str) -> np.ndarray:
        depth = np.stack([scene.depth(cam, t) for t in frames])
        return np.where(depth <= max_depth_m, depth, np.float32(0.0))

    depth_n, depth_m = recorded_depth(gen.ref_camera), recorded_depth(gen.other_camera)
    poses_n = np.stack([cam_n.pose(t) for t in frames])
    poses_m = np.stack([cam_m.pose(t) for t in frames])
    pm_m_in_n = pointmap_to_frame(depth_to_pointmap(depth_m, cam_m.K), poses_m, poses_n)
    rgb_n = np.stack([scene.rgb(gen.ref_camera, t) for t in frames])
    rgb_m = np.stack([scene.rgb(gen.other_camera, t) for t in frames])
    out = {
        "psnr_n": float(np.mean(psnr(gen.rgb_ref, rgb_n))),
        "psnr_m": float(np.mean(psnr(gen.rgb_other, rgb_m))),
        "ssim_n": float(np.mean(ssim(gen.rgb_ref, rgb_n))),
        "ssim_m": float(np.mean(ssim(gen.rgb_other, rgb_m))),
        "absrel_n": abs_rel(gen.depth_ref, depth_n),
        "delta1_n": delta1(gen.depth_ref, depth_n),
        "absrel_m": abs_rel(gen.pointmap_other_in_ref[..., 2], pm_m_in_n[..., 2]),
        "delta1_m": delta1(gen.pointmap_other_in_ref[..., 2], pm_m_in_n[..., 2]),
        "miou_m_to_n": float("nan"),
        "miou_n_to_m": float("nan"),
    }
    if scene.has_gripper_mask(gen.ref_camera) and scene.has_gripper_mask(gen.other_camera):
        mask_n = np.stack([scene.gripper_mask(gen.ref_camera, t) for t in frames])
        mask_m = np.stack([scene.gripper_mask(gen.other_camera, t) for t in frames])
        out["miou_m_to_n"] = gripper_miou(mask_m, gen.pointmap_other_in_ref, mask_n, cam_n.K)
        T_m_n = compose(invert(gen.T_world_other), gen.T_world_ref)
        out["miou_n_to_m"] = gripper_miou(mask_n, gen.pointmap_ref, mask_m, cam_m.K, T_m_n)
    return out


@dataclass
class Column:
    """One report column being scored: its result, how it predicts a clip, the time spent predicting
    and, for FVD, the clips' videos."""

    result: ModelResult
    predict: Callable  # (scene, EvalPair) -> Generation
    max_depth_m: float
    seconds: float = 0.0
    videos: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"real_n": [], "fake_n": [], "real_m": [], "fake_m": []}
    )

    def score_clip(self, scene, pair: EvalPair, *, keep_videos: bool) -> None:
        """Predict `pair`, time the prediction, add its metrics (and its videos when asked)."""
        started = time.perf_counter()
        gen = self.predict(scene, pair)
        self.seconds += time.perf_counter() - started
        self.result.pairs.append((pair, clip_metrics(scene, gen, self.max_depth_m)))
        if keep_videos:
            self.videos["fake_n"].append(gen.rgb_ref)
            self.videos["fake_m"].append(gen.rgb_other)
            self.videos["real_n"].append(np.stack([scene.rgb(pair.ref, int(t)) for t in gen.frame_indices]))
            self.videos["real_m"].append(np.stack([scene.rgb(pair.other, int(t)) for t in gen.frame_indices]))

    def finish(self, i3d=None) -> ModelResult:
        """Time per clip and, when `i3d` is given and at least two clips were scored, FVD per view."""
        clips = len(self.result.pairs)
        self.result.seconds_per_clip = self.seconds / clips if clips else float("nan")
        if i3d is not None and clips >= 2:
            from geo4d_studio.metrics.fvd import compute_fvd

            for view in ("n", "m"):
                real, fake = np.stack(self.videos[f"real_{view}"]), np.stack(self.videos[f"fake_{view}"])
                self.result.fvd[f"fvd_{view}"] = compute_fvd(real, fake, i3d)
        return self.result


def model_columns(
    model_dirs: list[str | Path],
    names: list[str],
    *,
    steps: int = 25,
    guidance: float = 2.5,
    seed: int = 0,
    autoencoders: bool = False,
) -> list[Column]:
    """One column per model (its generations), plus, with `autoencoders`, the first model's
    reconstruction of the recorded future (`Geo4DPipeline.reconstruct`)."""
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline

    columns = []
    pipes = [Geo4DPipeline.from_pretrained(d) for d in model_dirs]
    for model_dir, name, pipe in zip(model_dirs, names, pipes, strict=True):

        def generate(scene, pair: EvalPair, pipe=pipe):
            return pipe(scene, pair.ref, pair.other, pair.start, steps=steps, guidance=guidance, seed=seed)

        columns.append(Column(ModelResult(name, str(model_dir)), generate, pipe.config.max_depth_m))
    if autoencoders:
        first = pipes[0]

        def reconstruct(scene, pair: EvalPair):
            return first.reconstruct(scene, pair.ref, pair.other, pair.start)

        result = ModelResult(f"{names[0]}: {AUTOENCODERS_NAME}", str(model_dirs[0]))
        columns.append(Column(result, reconstruct, first.config.max_depth_m))
    return columns


def score(
    columns: list[Column],
    pairs: list[EvalPair],
    *,
    i3d=None,
    on_clip: ClipCallback | None = None,
    stop: threading.Event | None = None,
) -> list[ModelResult]:
    """Score every column clip by clip (each clip by all columns before the next), so that a `stop`
    set meanwhile leaves every column with the same finished clips; `on_clip(column name, clips
    scored, total)` after each clip of each column."""
    from geo4d_studio.scene import open_scene

    done, total = 0, len(pairs) * len(columns)
    for pair in pairs:
        if stop is not None and stop.is_set():
            break
        with open_scene(pair.episode) as scene:
            for column in columns:
                column.score_clip(scene, pair, keep_videos=i3d is not None)
                done += 1
                if on_clip is not None:
                    on_clip(column.result.name, done, total)
    return [column.finish(i3d) for column in columns]


def condition_frame_clip(scene, pair: EvalPair, num_frames: int, stride: int):
    """The baseline prediction of `pair`: its recorded condition frame repeated over the future frames."""
    from geo4d_studio.diffusion.pipeline import future_frame_indices
    from geo4d_studio.reference import recorded_clip

    future = future_frame_indices(scene, pair.start, num_frames, stride)
    still = recorded_clip(scene, pair.ref, pair.other, pair.start, [pair.start] * len(future))
    return dataclasses.replace(
        still,
        frame_indices=future,
        timestamps=np.asarray(scene.timestamps)[future],
        params={"model": BASELINE_NAME},
    )


def baseline_column(config) -> Column:
    """The column of `condition_frame_clip` with the clip length and stride of `config`."""

    def predict(scene, pair: EvalPair):
        return condition_frame_clip(scene, pair, config.num_future_frames, config.frame_stride)

    return Column(ModelResult(name=BASELINE_NAME, model_dir="(recording)"), predict, config.max_depth_m)


def evaluate(
    model_dirs: list[str | Path],
    data: str | Path,
    *,
    num_pairs: int = 8,
    steps: int = 25,
    guidance: float = 2.5,
    seed: int = 0,
    i3d_path: str | Path | None = None,
    baseline: bool = False,
    autoencoders: bool = False,
    on_clip: ClipCallback | None = None,
    stop: threading.Event | None = None,
) -> list[ModelResult]:
    """Evaluate each model on the same `num_pairs` held-out clips of the episodes in `data`; with
    `baseline`, add the repeated-condition-frame column (clip length and stride of the first model);
    with `autoencoders`, the first model's autoencoders-only column. `on_clip` is called after each
    clip of each column (see `score`); once `stop` is set, no further clip is started (every column
    then holds the same finished clips)."""
    from geo4d_studio.diffusion.config import ModelConfig

    if num_pairs < 1:
        raise Geo4DError(f"--pairs {num_pairs}: must be at least 1")
    if i3d_path is not None and num_pairs < 2:
        raise Geo4DError(f"--pairs {num_pairs}: FVD needs at least 2 clips per view")
    configs = []
    for model_dir in model_dirs:
        config_file = Path(model_dir) / "geo4d_config.json"
        if not config_file.is_file():
            raise Geo4DError(f"{config_file}: missing (not an exported Geo4D model folder)")
        configs.append(ModelConfig.load(config_file))
    span = max(c.num_future_frames * c.frame_stride for c in configs)
    pairs = held_out_pairs(episode_paths(data), num_pairs, span, seed)
    i3d = None
    if i3d_path is not None:
        from geo4d_studio.metrics.fvd import load_i3d

        i3d = load_i3d(i3d_path)
    columns = model_columns(
        model_dirs,
        _model_names(model_dirs),
        steps=steps,
        guidance=guidance,
        seed=seed,
        autoencoders=autoencoders,
    )
    columns += [baseline_column(configs[0])] if baseline else []
    return score(columns, pairs, i3d=i3d, on_clip=on_clip, stop=stop)


def _model_names(model_dirs: list[str | Path]) -> list[str]:
    """Column names: each folder's name (its parent's for a run's `pipeline/` folder), or the paths as
    given when those names would repeat."""
    names = []
    for model_dir in model_dirs:
        path = Path(model_dir).resolve()
        names.append(path.parent.name if path.name == "pipeline" else path.name)
    return names if len(set(names)) == len(names) else [str(d) for d in model_dirs]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return NOT_COMPUTED
    if math.isnan(value):
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def paired_difference(result: ModelResult, reference: ModelResult, key: str) -> tuple[float, float, float]:
    """Mean per-clip difference `result - reference` of metric `key` and its 95 % confidence interval
    (Student t over the clips where both are defined; NaN where fewer than two are). Both must hold
    the same clips in the same order, as `score` leaves them."""
    from scipy import stats

    if [pair for pair, _ in result.pairs] != [pair for pair, _ in reference.pairs]:
        raise ValueError(f"{result.name} and {reference.name} were not scored on the same clips")
    a = np.array([m[key] for _, m in result.pairs], dtype=np.float64)
    b = np.array([m[key] for _, m in reference.pairs], dtype=np.float64)
    d = (a - b)[~(np.isnan(a) | np.isnan(b))]
    if d.size < 2:
        return float("nan"), float("nan"), float("nan")
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def _fmt_difference(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "n/a"
    mark = " *" if low > 0 or high < 0 else ""
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]{mark}"


def format_markdown(results: list[ModelResult], settings: dict) -> str:
    """A summary table (rows = metrics, columns = models); with several columns, each one's paired
    difference from the first with its 95 % interval; then one row per clip per model."""
    lines = ["# Geo4D evaluation on held-out cameras", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()]
    header = "| metric | " + " | ".join(r.name for r in results) + " |"
    lines += ["", header, "|---" * (len(results) + 1) + "|"]
    for key, label in METRICS.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(r.mean(key)) for r in results) + " |")
    for key in FVD_KEYS:
        lines.append(f"| FVD view {key[-1]} ↓ | " + " | ".join(_fmt(r.fvd[key], 1) for r in results) + " |")
    lines.append("| seconds per clip | " + " | ".join(f"{r.seconds_per_clip:.1f}" for r in results) + " |")
    first, others = results[0], results[1:]
    if others:
        lines += ["", f"## Differences from {first.name} (same clips)", ""]
        lines.append(
            "Mean per-clip difference (column − first) with its 95 % confidence interval over the clips; "
            "`*`: the interval excludes 0 (mind the arrows: ↓ metrics improve when negative)."
        )
        lines += ["", "| metric | " + " | ".join(f"{r.name} − {first.name}" for r in others) + " |"]
        lines.append("|---" * (len(others) + 1) + "|")
        for key, label in METRICS.items():
            cells = [_fmt_difference(*paired_difference(r, first, key)) for r in others]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Per clip", ""]
    lines.append("| model | episode | n | m | start | " + " | ".join(METRICS) + " |")
    lines.append("|---" * (len(METRICS) + 5) + "|")
    for r in results:
        for pair, metrics in r.pairs:
            cells = [r.name, pair.episode.name, pair.ref, pair.other, str(pair.start)]
            lines.append("| " + " | ".join(cells + [_fmt(metrics[k]) for k in METRICS]) + " |")
    return "\n".join(lines) + "\n"


def format_csv(results: list[ModelResult]) -> str:
    """One row per clip per model plus a `mean` row per model (FVD only there)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "episode", "ref", "other", "start", *METRICS, *FVD_KEYS])
    for r in results:
        for pair, metrics in r.pairs:
            row = [r.name, pair.episode.name, pair.ref, pair.other, pair.start]
            writer.writerow(row + [repr(float(metrics[k])) for k in METRICS] + ["", ""])
        means = [repr(r.mean(k)) for k in METRICS]
        fvd = [NOT_COMPUTED if r.fvd[k] is None else repr(r.fvd[k]) for k in FVD_KEYS]
        writer.writerow([r.name, "mean", "", "", "", *means, *fvd])
    return buffer.getvalue()


def check_report_path(out: str | Path, *, overwrite: bool = False) -> Path:
    """`out` as a Path if a report can be written there (.md or .csv, writable); else OutputPathError."""
    out = check_writable(out, overwrite=overwrite)
    if out.suffix.lower() not in (".md", ".csv"):
        raise OutputPathError(out, "report must end in .md or .csv")
    return out


def write_report(
    results: list[ModelResult], out: str | Path, settings: dict, *, overwrite: bool = False
) -> Path:
    """Write the report as Markdown (.md) or CSV (.csv), chosen by the suffix of `out` (atomic)."""
    out = check_report_path(out, overwrite=overwrite)
    text = format_markdown(results, settings) if out.suffix.lower() == ".md" else format_csv(results)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out

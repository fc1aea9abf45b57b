"""Generation speed and memory of the shipped model: 25 Euler steps (the baseline) vs few-step sampling.

For each step count: seconds per 2-view clip (best of --repeats), peak resident memory during the call
(sampled from /proc/self/status; CUDA max allocated on a GPU), and what the speed costs in quality —
PSNR / AbsRel of view n against the 25-step output of the same seed and against the recording.
Prints a Markdown table and writes it to docs/benchmarks/generation.md. `--random-weights paper` times
the paper-sized configuration (2.4 B-parameter U-Net, 256×320) with random weights instead: speed and
memory only, the quality columns then compare noise with noise. On a GPU every row samples with CUDA
graphs (the pipeline's default) and a last row repeats the baseline without them.

    .venv/bin/python benchmarks/generation.py [--model model] [--scene FILE] [--steps 25 8 4]
        [--device cuda] [--random-weights tiny|small|paper] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.paths import DEFAULT_MODEL_DIR, REPO_ROOT, default_sample_scene, repo_relative

DOC = REPO_ROOT / "docs" / "benchmarks" / "generation.md"


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Context manager sampling the RSS every 5 ms; `.peak` holds the maximum seen."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def run(args: argparse.Namespace) -> str:
    """Measure every step count; return the Markdown report."""
    import torch

    from geo4d_studio.diffusion.dataset import split_cameras
    from geo4d_studio.diffusion.evaluate import clip_metrics
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline
    from geo4d_studio.metrics.depth import abs_rel
    from geo4d_studio.metrics.image import psnr
    from geo4d_studio.scene import open_scene

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.random_weights:
        from geo4d_studio.diffusion.config import ModelConfig
        from geo4d_studio.diffusion.pipeline import default_dtype, resolve_device

        device = resolve_device(args.device)
        with torch.device(device):  # initialise on the device: a 2.4 B-parameter U-Net is slow on a CPU
            pipe = Geo4DPipeline.from_model_config(getattr(ModelConfig, args.random_weights)())
        pipe.to(device, default_dtype(device))
    else:
        pipe = Geo4DPipeline.from_pretrained(args.model, device=args.device)
    cuda = pipe.device.type == "cuda"
    rows, baseline = [], None
    with open_scene(args.scene) as scene:
        _, held_out = split_cameras(scene.camera_names)
        ref, other = held_out[0], held_out[1]
        started = time.perf_counter()
        pipe(scene, ref, other, args.start, steps=1, seed=args.seed)  # warm-up (allocations, CUDA graph)
        args.first_call_s = time.perf_counter() - started
        settings = [(steps, cuda) for steps in args.steps]
        if cuda:  # the same baseline without CUDA graphs
            settings.append((args.steps[0], False))
        for steps, graphs in settings:
            pipe.use_cuda_graphs = graphs
            times, gen = [], None
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            with PeakRss() as rss:
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    gen = pipe(scene, ref, other, args.start, steps=steps, seed=args.seed)
                    if cuda:
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - started)
            truth = clip_metrics(scene, gen, pipe.config.max_depth_m)
            baseline = baseline or (min(times), gen)
            rows.append(
                {
                    "steps": steps,
                    "graphs": graphs,
                    "seconds": min(times),
                    "ratio": min(times) / baseline[0],
                    "rss_mb": rss.peak / 2**20,
                    "cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
                    "psnr_gt": truth["psnr_n"],
                    "absrel_gt": truth["absrel_n"],
                    "psnr_base": float(np.mean(psnr(gen.rgb_ref, baseline[1].rgb_ref))),
                    "absrel_base": abs_rel(gen.depth_ref, baseline[1].depth_ref),
                }
            )
        frames, size = len(gen.frame_indices), gen.rgb_ref.shape[1:3]
    return report(rows, args, pipe, frames, size, ref, other)


def report(rows: list[dict], args: argparse.Namespace, pipe, frames: int, size, ref: str, other: str) -> str:
    """The Markdown page: setting, table, targets."""
    import torch

    cpu = platform.processor() or platform.machine()
    base_steps = rows[0]["steps"]
    model_h, model_w = pipe.config.image_size
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.random_weights:
        model = f"random-weight `{args.random_weights}` preset"
    else:
        model = f"`{repo_relative(args.model)}`"
    setting = (
        f"`benchmarks/generation.py`, {when}. Model {model}, scene `{Path(args.scene).name}`, "
        f"views n=`{ref}` m=`{other}` (held-out cameras), start frame {args.start}, {frames} future frames "
        f"per view at {size[0]}×{size[1]} (model {model_h}×{model_w}), guidance 2.5, seed {args.seed}. "
        f"Device `{device_name(pipe.device)}` ({cpu}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)); best of "
        f"{args.repeats} runs per row. The {base_steps}-step run is the baseline of the ratios and of the "
        f"'vs {base_steps}-step' columns (same seed, so the same initial noise). The first generation "
        f"(1 step, including the CUDA graph capture on a GPU) took {args.first_call_s:.2f} s."
    )
    lines = [
        "# Generation speed and few-step quality",
        "",
        setting,
        "",
        "| steps | CUDA graph | s / clip | × baseline | peak RSS (MB) | CUDA max alloc (MB) "
        "| PSNR n vs recording (dB) | AbsRel n vs recording "
        f"| PSNR n vs {base_steps}-step (dB) | AbsRel n vs {base_steps}-step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cuda = "—" if r["cuda_mb"] is None else f"{r['cuda_mb']:.0f}"
        graph = "yes" if r["graphs"] else "no"
        lines.append(
            f"| {r['steps']} | {graph} | {r['seconds']:.2f} | {r['ratio']:.2f} | {r['rss_mb']:.0f} "
            f"| {cuda} | {r['psnr_gt']:.2f} | {r['absrel_gt']:.3f} "
            f"| {r['psnr_base']:.2f} | {r['absrel_base']:.3f} |"
        )
    base = rows[0]
    target, where = (1.0, "on an H100-class GPU") if pipe.device.type == "cuda" else (30.0, "on a CPU")
    verdict = "met" if base["seconds"] <= target else "NOT met"
    lines += [
        "",
        f"Target: ≤ {target:g} s per 2-view clip {where} — {verdict} at {base['steps']} steps "
        f"({base['seconds']:.2f} s).",
        "",
        "Peak RSS is the whole process (Python, torch, the model and the scene), sampled every 5 ms.",
    ]
    return "\n".join(lines) + "\n"


def device_name(device) -> str:
    """`cpu`, or the CUDA device's product name."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)


def main() -> None:
    """Parse arguments, measure, print and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--scene", type=Path, default=None, help="episode file (default: first sample)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 8, 4], help="first = baseline")
    parser.add_argument("--start", type=int, default=10, help="start frame")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: CUDA if available)")
    parser.add_argument(
        "--random-weights",
        choices=("tiny", "small", "paper"),
        help="time this preset with random weights instead of --model (speed and memory only)",
    )
    parser.add_argument("--out", type=Path, default=DOC, help="where to write the Markdown page")
    args = parser.parse_args()
    args.scene = args.scene or default_sample_scene()
    text = run(args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""U-Net training step time: the latent cache (`diffusion.latent_cache`) against encoding every frame afresh.

A real `Trainer` fine-tuning the shipped model on the shipped samples (or `--data`) times the same
`--steps` batches three ways, each step the full `Trainer.train_step` (model batch, latents, EDM loss,
backward, optimizer, EMA): the baseline encodes all 4 × (F+1) frames of each clip (a cache that keeps
nothing), then a fresh cache on its first pass over the batches (it encodes what it has not seen) and
again once warm (every camera frame kept: only view m's pointmap in n's frame is encoded). A long run
moves from the first to the warm figure as it meets the pool's camera frames. Prints a Markdown table
(median seconds per step, ratios against the baseline) and writes it to docs/benchmarks/training.md.

    .venv/bin/python benchmarks/training.py [--model model] [--data sample_data] [--batch-size 8]
        [--steps 6] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.paths import DEFAULT_MODEL_DIR, REPO_ROOT, repo_relative

DOC = REPO_ROOT / "docs" / "benchmarks" / "training.md"


def step_seconds(trainer, batches: list[dict]) -> list[float]:
    """Wall-clock seconds of one U-Net training step on each batch."""
    times = []
    for batch in batches:
        started = time.perf_counter()
        trainer.train_step("unet", batch)
        times.append(time.perf_counter() - started)
    return times


def run(args: argparse.Namespace) -> str:
    """Measure the three ways and return the Markdown page."""
    import torch
    from torch.utils.data import default_collate

    from geo4d_studio.diffusion.latent_cache import LatentCache
    from geo4d_studio.diffusion.train import Trainer, TrainOptions

    with tempfile.TemporaryDirectory() as out:
        opts = TrainOptions(
            preset="small",
            data=args.data,
            out=Path(out),
            init_from=args.model,
            batch_size=args.batch_size,
            threads=args.threads,
            progress=False,
        )
        trainer = Trainer(opts)
        size = args.batch_size
        batches = [
            default_collate([trainer.train_data[k * size + b] for b in range(size)])
            for k in range(args.steps)
        ]
        trainer.train_step("unet", batches[0])  # warm-up: first-call allocations
        trainer.latents = LatentCache(trainer.rgb_vae, trainer.pm_vae, max_bytes=0)
        rows = [("encode every frame (baseline)", step_seconds(trainer, batches))]
        trainer.latents = LatentCache(trainer.rgb_vae, trainer.pm_vae)
        rows.append(("latent cache, first pass", step_seconds(trainer, batches)))
        rows.append(("latent cache, warm", step_seconds(trainer, batches)))
        held_mb = trainer.latents.cached_bytes / 2**20
        episodes = len(trainer.train_data.episodes)

    base = float(np.median(rows[0][1]))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = platform.processor() or platform.machine()
    lines = [
        "# U-Net training step: latent cache vs encoding afresh",
        "",
        f"`benchmarks/training.py`, {when}. `train --init-from {repo_relative(args.model)}` on {episodes} "
        f"episodes of `{repo_relative(args.data)}`, batch {size} clips, {args.steps} steps per row (the same "
        "batches in every row), "
        f"device `cpu` ({cpu}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)). The warm "
        f"cache held {held_mb:.1f} MB of latents.",
        "",
        "| how latents are made | median s / step | min–max | × baseline time |",
        "|---|---:|---:|---:|",
    ]
    for name, times in rows:
        median = float(np.median(times))
        lines.append(f"| {name} | {median:.2f} | {min(times):.2f}–{max(times):.2f} | {median / base:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, measure, print and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "sample_data")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=DOC, help="where to write the Markdown page")
    args = parser.parse_args()
    page = run(args)
    print(page)
    with atomic_path(args.out, overwrite=True) as tmp:
        tmp.write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()

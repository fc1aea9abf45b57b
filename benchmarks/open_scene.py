"""Opening a recording: the lazy `open_scene` against an eager h5py read of every dataset.

Writes two synthetic episodes with `SceneWriter` (8 cameras of 480×640 RGB + uint16 depth with sensor-like
noise, so they compress like real recordings): the full one (`--size 1` = 200 frames, about 1 GB on
disk) and one a quarter of its length. For each file, in a fresh subprocess (so memory is not shared
between measurements, page cache warm): time and RSS growth of opening, and the time to read frame t
of every camera (median over several t). The baseline loads every dataset into numpy (what a reader
without laziness does) and then indexes the arrays. Prints a markdown table with ratios; `--write` also
saves it to docs/benchmarks/open_scene.md.

    .venv/bin/python benchmarks/open_scene.py [--size 1.0] [--write] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from geo4d_studio.atomic import atomic_path
from geo4d_studio.paths import REPO_ROOT

CAMERAS, HEIGHT, WIDTH, FULL_FRAMES = 8, 480, 640, 200
DEPTH_SCALE_M = 1e-4
NOISE_BANK = 8
READ_FRAMES = 7


def write_episode(path: Path, frames: int) -> tuple[float, float]:
    """A synthetic episode (moving box over a floor, sensor noise); returns (wall s, CPU s) it took."""
    from geo4d_studio.scene import SceneWriter
    from geo4d_studio.scene.synthetic import intrinsics, render_frame, ring_pose

    rng = np.random.default_rng(0)
    rgb_noise = rng.integers(-4, 5, (NOISE_BANK, HEIGHT, WIDTH, 3), dtype=np.int16)
    depth_noise = rng.normal(0.0, 1e-3, (NOISE_BANK, HEIGHT, WIDTH)).astype(np.float32)
    K = intrinsics(HEIGHT, WIDTH)
    start, start_cpu = time.perf_counter(), time.process_time()
    with SceneWriter(
        path, fps=10.0, timestamps=np.arange(frames) / 10.0, depth_scale=DEPTH_SCALE_M
    ) as writer:
        for cam in range(CAMERAS):
            pose = ring_pose(2 * np.pi * cam / CAMERAS)
            base_rgb, base_depth = render_frame(K, pose, np.zeros(2), HEIGHT, WIDTH)
            # Frames differ by a shift and by noise: cheap to make, compress like camera images.
            rgb = (
                np.clip(np.roll(base_rgb, t, axis=1) + rgb_noise[t % NOISE_BANK], 0, 255).astype(np.uint8)
                for t in range(frames)
            )
            depth = (
                np.roll(base_depth, t, axis=1) + (base_depth > 0) * depth_noise[(t + cam) % NOISE_BANK]
                for t in range(frames)
            )
            writer.add_camera(f"cam{cam}", K, pose, rgb, depth)
    return time.perf_counter() - start, time.process_time() - start_cpu


def rss_bytes() -> int:
    """Resident set size of this process."""
    import psutil

    return psutil.Process().memory_info().rss


def measure(path: Path, mode: str) -> dict[str, float]:
    """One measurement in this (fresh) process: open time/RSS and per-frame read time."""
    import h5py

    from geo4d_studio.scene import open_scene

    frames_to_read = np.linspace(0, 10_000, READ_FRAMES).astype(int)
    before = rss_bytes()
    start, start_cpu = time.perf_counter(), time.process_time()
    if mode == "lazy":
        scene = open_scene(path)
        open_s, open_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
        rss = rss_bytes() - before
        frames_to_read %= scene.num_frames
        reads = []
        for t in frames_to_read:
            tick = time.process_time()
            for cam in scene.camera_names:
                scene.rgb(cam, t), scene.depth(cam, t)
            reads.append(time.process_time() - tick)
        scene.close()
    else:
        with h5py.File(path, "r") as h5:
            arrays: dict[str, np.ndarray] = {}
            h5.visititems(
                lambda name, obj: arrays.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None
            )
        open_s, open_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
        rss = rss_bytes() - before
        num_frames = arrays["timestamps"].shape[0]
        frames_to_read %= num_frames
        reads = []
        for t in frames_to_read:
            tick = time.process_time()
            for cam in range(CAMERAS):
                rgb = arrays[f"cameras/cam{cam}/rgb"][t]
                depth = arrays[f"cameras/cam{cam}/depth"][t].astype(np.float32) * np.float32(DEPTH_SCALE_M)
                rgb, depth  # noqa: B018 (same result as the lazy reader: uint8 image + float32 metres)
            reads.append(time.process_time() - tick)
    return {
        "open_s": open_s,
        "open_cpu_s": open_cpu_s,
        "rss_mb": rss / 1e6,
        "frame_s": statistics.median(reads),
    }


def measure_in_subprocess(path: Path, mode: str) -> dict[str, float]:
    """Run `measure` in a fresh interpreter so memory numbers are not polluted by earlier runs."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def run(size: float, keep: Path | None) -> str:
    """Write the episodes, measure both readers on both, and return the markdown report."""
    workdir = keep or Path(tempfile.mkdtemp(prefix="geo4d-bench-open-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        frames_full = max(4, round(FULL_FRAMES * size))
        rows, written = [], []
        for frames in (max(2, frames_full // 4), frames_full):
            path = workdir / f"episode_{frames}f.h5"
            if not path.exists():
                written.append((frames, *write_episode(path, frames)))
            lazy = measure_in_subprocess(path, "lazy")
            eager = measure_in_subprocess(path, "eager")
            rows.append((frames, path.stat().st_size / 1e9, lazy, eager))
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        "# Opening a recording: lazy `open_scene` vs eager h5py load",
        "",
        f"{CAMERAS} cameras × {HEIGHT}×{WIDTH}, RGB uint8 + depth uint16 (0.1 mm), gzip 4 + shuffle, "
        "one frame per chunk. Page cache warm; each number from a fresh process. Frame read = RGB + depth "
        f"(float32 m) of all {CAMERAS} cameras at one time step, median of {READ_FRAMES} time steps. "
        "CPU = process time (robust to other load on the machine), wall = elapsed.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f}), Python {platform.python_version()}. "
        f"Command: `python benchmarks/open_scene.py --size {size:g}`.",
        "",
        "| frames | file GB | open lazy: wall s | CPU s | open eager: wall s | CPU s | CPU ratio "
        "| RSS growth lazy MB | eager MB | frame read lazy CPU ms | eager CPU ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for frames, gb, lazy, eager in rows:
        ratio = eager["open_cpu_s"] / lazy["open_cpu_s"]
        lines.append(
            f"| {frames} | {gb:.2f} | {lazy['open_s']:.3f} | {lazy['open_cpu_s']:.3f} "
            f"| {eager['open_s']:.1f} | {eager['open_cpu_s']:.1f} | {ratio:.0f}× "
            f"| {lazy['rss_mb']:.1f} | {eager['rss_mb']:.0f} "
            f"| {lazy['frame_s'] * 1e3:.0f} | {eager['frame_s'] * 1e3:.1f} |"
        )
    (small_frames, _, small, _), (big_frames, _, big, _) = rows
    lines += [
        "",
        f"Lazy open, {big_frames} vs {small_frames} frames: CPU time {big['open_cpu_s']:.3f} s vs "
        f"{small['open_cpu_s']:.3f} s, RSS growth {big['rss_mb']:.1f} MB vs {small['rss_mb']:.1f} MB: "
        "independent of the file size (target: open ≤ 0.3 s). The eager load grows with the file.",
        "Writing (SceneWriter, including making the frames and compressing them): "
        + (
            ", ".join(f"{f} frames in {wall:.0f} s wall, {cpu:.0f} s CPU" for f, wall, cpu in written)
            or "not measured (episodes reused)"
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=float, default=1.0, help="1.0 = 200 frames (about 1 GB); scales frames"
    )
    parser.add_argument(
        "--write", action="store_true", help="save the table to docs/benchmarks/open_scene.md"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="write (and reuse) the episodes in this folder"
    )
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[1]), args.measure[0])))
        return
    report = run(args.size, args.keep)
    print(report)
    if args.write:
        target = REPO_ROOT / "docs" / "benchmarks" / "open_scene.md"
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text(report)


if __name__ == "__main__":
    main()

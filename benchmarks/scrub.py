"""Scrub latency: time from a time-cursor change to every pane repainted (panes, plots, timeline, 3D).

Runs the real main window on a shipped sample episode (all cameras visible, 3D view shown) and
compares, in the same run:
- Studio, decimated cloud: image items get new pixels, the 3D view shows its level-of-detail cloud;
- Studio, full cloud: the same with the full fused cloud;
- baseline, naive rebuild: every pane's view boxes and image items recreated per frame (full cloud).
"Repainted" means: the 3D view rendered synchronously into its own native window, then Qt's pending
paint events processed (Qt paints only the dirty regions of the rest of the window, in one flush).
Modes are timed after one sweep over the episode (decoded frames cached, GL state warm), as when a
researcher scrubs back and forth.
Then scrubs 1,000 frames back and forth and reports resident memory before and after.
Prints a markdown table and writes docs/benchmarks/scrub.md. Needs an X server (use xvfb-run).

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/scrub.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "docs" / "benchmarks" / "scrub.md"
TARGET_MS = 50.0


def frame_sequence(num_frames: int, count: int) -> list[int]:
    """`count` frames sweeping back and forth over the recording (every step changes the frame)."""
    sweep = list(range(num_frames)) + list(range(num_frames - 2, 0, -1))
    return [sweep[i % len(sweep)] for i in range(1, count + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", nargs="?", type=Path, help="recording (default: the shipped sample)")
    parser.add_argument("--frames", type=int, default=120, help="timed frame changes per mode")
    parser.add_argument(
        "--memory-frames", type=int, default=1000, help="frames scrubbed for the memory figure"
    )
    parser.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks/scrub.md")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from geo4d_studio.paths import default_sample_scene
    from geo4d_studio.qt.app import application, settle
    from geo4d_studio.qt.main_window import MainWindow
    from geo4d_studio.qt.status import resident_memory_mb

    scene_path = args.scene or default_sample_scene()
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, model_dir=Path(tmp) / "none")
        window.resize(1600, 1000)
        window.show()
        window.session.open(scene_path)
        settle(app, 1000)
        view3d = window.view3d
        if view3d is None:
            print("the 3D view is not available: nothing to compare", file=sys.stderr)
            return 1
        session, panes = window.session, window.panes
        scene = session.scene
        full_points = sum(int((scene.depth(c, 0) > 0).sum()) for c in scene.camera_names)
        decimated_limit, decimated_every = view3d.lod_max_points, view3d.lod_every

        def repaint_all() -> None:
            """Render the 3D view, then let Qt paint every dirty region of the window (one flush)."""
            view3d.render_now()
            QApplication.sendPostedEvents()
            QApplication.processEvents()

        def timed(step: Callable[[int], None]) -> list[float]:
            times = []
            for frame in frame_sequence(scene.num_frames, args.frames):
                start = time.perf_counter()
                step(frame)
                repaint_all()
                times.append((time.perf_counter() - start) * 1000)
            return times

        def studio(frame: int) -> None:
            view3d.begin_interaction()
            session.set_frame(frame)

        def naive(frame: int) -> None:
            view3d.begin_interaction()
            session.set_frame(frame)
            panes.rebuild()

        timed(studio)  # one sweep: decoded-frame cache and GL state warm
        results: dict[str, list[float]] = {}
        results["Studio, decimated cloud"] = timed(studio)
        view3d.lod_max_points, view3d.lod_every = 10**9, 1
        results["Studio, full cloud"] = timed(studio)
        results["baseline: naive pane rebuild, full cloud"] = timed(naive)
        view3d.lod_max_points, view3d.lod_every = decimated_limit, decimated_every

        memory_before = resident_memory_mb()
        start = time.perf_counter()
        for frame in frame_sequence(scene.num_frames, args.memory_frames):
            studio(frame)
            repaint_all()
        scrub_s = time.perf_counter() - start
        memory_after = resident_memory_mb()
        cams = len(session.visible_cameras)
        window.close()
        settle(app, 50)

    baseline = statistics.median(results["baseline: naive pane rebuild, full cloud"])
    lines = [
        "| mode | median ms | p90 ms | speed-up vs baseline |",
        "|---|---:|---:|---:|",
    ]
    for name, times in results.items():
        median, p90 = statistics.median(times), float(np.percentile(times, 90))
        lines.append(f"| {name} | {median:.1f} | {p90:.1f} | {baseline / median:.2f}× |")
    decimated_ms = statistics.median(results["Studio, decimated cloud"])
    verdict = "meets" if decimated_ms <= TARGET_MS else "misses"
    summary = [
        f"Scene `{scene_path.name}`: {scene.num_frames} frames, {cams} cameras visible, "
        f"{full_points:,} valid depth pixels per frame (3D cloud); the decimated cloud keeps every "
        f"{decimated_every}th point, at most {decimated_limit:,}.",
        f"Decimated median {decimated_ms:.1f} ms {verdict} the ≤ {TARGET_MS:.0f} ms target.",
        f"Memory: {memory_before:.0f} MiB before, {memory_after:.0f} MiB after scrubbing "
        f"{args.memory_frames} frames back and forth ({scrub_s:.1f} s, "
        f"{memory_after - memory_before:+.0f} MiB).",
    ]
    table = "\n".join(lines)
    print(table)
    print("\n".join(summary))
    if not args.no_report:
        from geo4d_studio.atomic import atomic_path

        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        text = (
            "# Scrub latency (`benchmarks/scrub.py`)\n\n"
            "Time from a time-cursor change to all panes repainted (camera panes, plots, timeline, 3D "
            f"view), main window 1600×1000 under Xvfb (Mesa llvmpipe), {machine}. "
            f"{args.frames} frame changes per mode, back and forth over the episode, after one warm-up "
            "sweep (decoded frames cached, GL state warm).\n\n"
            f"{table}\n\n" + "\n".join(f"- {line}" for line in summary) + "\n\n"
            'Reproduce: `xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/scrub.py`\n'
        )
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(REPORT, overwrite=True) as tmp_path:
            tmp_path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

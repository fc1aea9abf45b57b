"""Fusion speed: `geometry.fusion.fuse_views` against Open3D's per-view `create_from_rgbd_image` + merge.

Both sides start from the same numpy arrays (rgb uint8, depth float32 metres, K, T_world_cam) and end
with numpy points and colours, so conversions count on both sides. A warm-up call first loads (or, the
first time ever, compiles) the numba kernels and fills the pixel-ray caches; Open3D gets the same
warm-up. Each row is measured in `--rounds` rounds; in each, each side is timed for at least
`--repeats` runs and at least `--min-seconds`, and its best wall-clock time counts (the run least
disturbed by other load). The times shown are medians over the rounds; the speed-up is the median of
the rounds' ratios, with their range (both sides' times drift with the shared machine's load, Open3D's
by up to 2x). Prints a markdown table; `--write` also saves it to docs/benchmarks/fusion.md.

    .venv/bin/python benchmarks/fusion.py [--rounds 5] [--repeats 7] [--min-seconds 0.5] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from geo4d_studio.geometry import se3
from geo4d_studio.geometry.fusion import fuse_views
from geo4d_studio.paths import REPO_ROOT, sample_scenes

VOXEL_M = 0.005


def sample_frame_views(path: Path, t: int) -> list[tuple]:
    """All views of frame t of a recording."""
    from geo4d_studio.scene import open_scene

    with open_scene(path) as scene:
        return [
            (scene.rgb(n, t), scene.depth(n, t), scene.cameras[n].K, scene.cameras[n].pose(t))
            for n in scene.camera_names
        ]


def synthetic_views(cameras: int = 4, h: int = 480, w: int = 640) -> list[tuple]:
    """`cameras` views of a tilted wavy surface around the origin, 10 % of pixels invalid."""
    rng = np.random.default_rng(0)
    K = np.array([[0.9 * w, 0, (w - 1) / 2], [0, 0.9 * w, (h - 1) / 2], [0, 0, 1]])
    yy, xx = np.mgrid[0:h, 0:w]
    views = []
    for i in range(cameras):
        angle = 2 * np.pi * i / cameras
        T = se3.look_at([np.cos(angle), np.sin(angle), 0.8], [0, 0, 0])
        depth = (1.1 + 0.05 * np.sin(xx / 40.0) + 0.03 * np.cos(yy / 25.0)).astype(np.float32)
        depth[rng.random((h, w)) < 0.1] = 0
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        views.append((rgb, depth, K, T))
    return views


def open3d_fuse(views: list[tuple], voxel_m: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: Open3D RGBD image -> point cloud per view, merged, optionally voxel-downsampled."""
    import open3d as o3d

    merged = o3d.geometry.PointCloud()
    for rgb, depth, K, T_world_cam in views:
        h, w = depth.shape
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(rgb)),
            o3d.geometry.Image(np.ascontiguousarray(depth)),
            depth_scale=1.0,
            depth_trunc=1e6,
            convert_rgb_to_intensity=False,
        )
        intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        merged += o3d.geometry.PointCloud.create_from_rgbd_image(
            rgbd, intrinsic, extrinsic=se3.invert(T_world_cam)
        )
    if voxel_m is not None:
        merged = merged.voxel_down_sample(voxel_m)
    return np.asarray(merged.points), (np.asarray(merged.colors) * 255).round().astype(np.uint8)


def best_seconds(fn, repeats: int, min_seconds: float) -> float:
    """Fastest of at least `repeats` wall-clock runs, repeated for at least `min_seconds`, after a warm-up."""
    fn()  # warm-up: imports, numba kernels, ray cache
    times: list[float] = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < repeats or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(repeats: int, min_seconds: float, rounds: int) -> str:
    cases = []
    scenes = sample_scenes()
    if scenes:
        views = sample_frame_views(scenes[0], 0)
        h, w = views[0][1].shape
        cases.append((f"{scenes[0].name} frame 0, {len(views)} x {h}x{w}", views))
    cases.append(("synthetic, 4 x 480x640", synthetic_views()))
    rows = [
        "| frame | voxel | points (ours / Open3D) | ours ms | Open3D ms | speed-up (median, range) |",
        "|---|---|---|---|---|---|",
    ]
    for label, views in cases:
        for voxel in (None, VOXEL_M):
            ours_points, _ = fuse_views(views, voxel_m=voxel)
            o3d_points, _ = open3d_fuse(views, voxel)
            times = np.array(
                [
                    [
                        best_seconds(lambda v=views, x=voxel: fuse_views(v, voxel_m=x), repeats, min_seconds),
                        best_seconds(lambda v=views, x=voxel: open3d_fuse(v, x), repeats, min_seconds),
                    ]
                    for _ in range(rounds)
                ]
            )
            ours, theirs = np.median(times, axis=0)
            ratios = times[:, 1] / times[:, 0]
            rows.append(
                f"| {label} | {'-' if voxel is None else f'{voxel * 1000:g} mm'} | "
                f"{len(ours_points)} / {len(o3d_points)} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | "
                f"{np.median(ratios):.1f}x ({ratios.min():.1f}-{ratios.max():.1f}x) |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--min-seconds", type=float, default=0.5, help="time each side of a round for at least this long"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per row (ratio: median of the rounds)")
    parser.add_argument("--write", action="store_true", help="also write docs/benchmarks/fusion.md")
    args = parser.parse_args()
    table = run(args.repeats, args.min_seconds, args.rounds)
    print(table)
    if args.write:
        import open3d as o3d

        from geo4d_studio.atomic import atomic_path

        machine = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        text = (
            "# Fusion benchmark\n\n"
            "`benchmarks/fusion.py`: all views of one frame fused into a world point cloud, from numpy "
            "arrays to numpy points + colours.\n\n"
            "- Ours: `geometry.fusion.fuse_views`, numba kernels: per view, a count of the valid pixels "
            "(finite depth > 0), then the runs of valid pixels written as `depth * ray + centre` with "
            "world-frame rays cached per camera pose (vectorised loops). With voxels, no point array: per "
            "image row, first the voxel of each valid pixel (its hash-table slot prefetched), then the "
            "points added to float64 sums; a pixel in the voxel of its left or upper neighbour needs no "
            "lookup, the others go through an open-addressing hash table in which the voxels of a "
            "4 x 4 x 4 block share cache lines; clouds of 200k pixels or more are done in two halves by "
            "two threads, then merged; voxels in order of first point.\n"
            f"- Baseline: Open3D {o3d.__version__} `RGBDImage.create_from_color_and_depth` + "
            "`PointCloud.create_from_rgbd_image` per view, merged with `+=`, then `voxel_down_sample`; "
            "colours back to uint8.\n\n"
            f"Per row {args.rounds} rounds; in each, the best wall-clock time of each side over at least "
            f"{args.repeats} runs and {args.min_seconds:g} s, after a warm-up. Times: medians over the "
            "rounds; speed-up: median of the rounds' ratios (range in brackets). "
            f"Machine: {machine}, {time.strftime('%Y-%m-%d')}, load average {load} "
            f"on {os.cpu_count()} cores while measuring (under heavy shared load the ratios move by up "
            "to ~2x between runs; compare rows of one run, not across runs).\n\n"
            f"{table}\n\n"
            "Regenerate: `.venv/bin/python benchmarks/fusion.py --write`.\n"
        )
        path = REPO_ROOT / "docs" / "benchmarks" / "fusion.md"
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(text)


if __name__ == "__main__":
    main()

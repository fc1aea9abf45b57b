"""Gripper tracking accuracy and speed on the sample episodes, against a naive baseline in the same run.

Ours: `track_recorded` per view (constant velocity, crop, multi-scale point-to-plane ICP on the
re-posed model, width fit, confidence, re-initialisation) and all views fused. Baseline: one
single-scale point-to-plane ICP per frame of the whole uncropped cloud onto the rigid model, started
at the previous pose. Speed is frames per CPU second (`time.process_time`, all threads of this
process), which is what one free core would give even when other jobs share the machine. Both
start from the recorded first-frame pose; errors are against /robot/ee_pose (targets: ATE <= 5 mm,
mean rotation error <= 2 deg, >= 30 frames/s per view).

With `--generated`, also generated clips: per episode `--clips` clips of the shipped model
(`DEFAULT_MODEL_DIR`, views n = `--ref`, m = `--other`, default the two cameras `split_cameras` holds
out; `--steps` Euler steps, seed = clip index), tracked with `track_generation` (both views, fused)
and compared with /robot/ee_pose at the predicted frames. In the same run the same clips' upper bound
(the recording packaged as a generation, `recorded_clip`, same views and frames) and a no-tracking
reference (the condition frame's recorded pose held for every predicted frame) are measured.

Usage: python benchmarks/tracking.py [--step 1] [--episodes pick_block_s0000 ...]
       [--generated [--clips 2] [--steps 25] [--ref cam01 --other cam03] [--skip-recorded]]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.se3 import invert
from geo4d_studio.paths import sample_scenes
from geo4d_studio.scene import open_scene
from geo4d_studio.tracking.metrics import pose_errors
from geo4d_studio.tracking.registration import icp_multiscale
from geo4d_studio.tracking.scene_tracking import combine_views, scene_model
from geo4d_studio.tracking.tracker import track_view
from geo4d_studio.trajectory import Trajectory

BASELINE_SCALE = ((0.02, 30),)


def baseline_view(pointmaps, model, start: np.ndarray) -> list[np.ndarray]:
    """Single-scale ICP of the whole valid cloud from the previous pose; returns T_cam_tool per frame."""
    poses, T = [], start
    for pm in pointmaps:
        pts = pm[pm[..., 2] > 0].astype(np.float64)
        reg = icp_multiscale(pts, model.points, model.normals, invert(T), scales=BASELINE_SCALE)
        T = invert(reg.transform)
        poses.append(T)
    return poses


def as_trajectory(scene, frames: np.ndarray, poses_world: np.ndarray, conf: np.ndarray) -> Trajectory:
    n = len(frames)
    lost = ~np.isfinite(poses_world).all(axis=(1, 2))
    return Trajectory(scene.timestamps[frames], poses_world, np.full(n, np.nan), conf, frames, lost, [""] * n)


def bench_episode(path, step: int) -> list[dict]:
    rows = []
    with open_scene(path) as scene:
        model = scene_model(scene)
        frames = np.arange(0, scene.num_frames, step)
        truth = scene.ee_pose[frames]
        per_view = {"ours": [], "baseline": []}
        for cam_name in scene.camera_names:
            cam = scene.cameras[cam_name]
            pointmaps = [depth_to_pointmap(scene.depth(cam_name, int(t)), cam.K) for t in frames]
            masks = [scene.gripper_mask(cam_name, int(t)) for t in frames]
            start = invert(cam.pose(int(frames[0]))) @ scene.ee_pose[frames[0]]
            width0 = float(scene.gripper_width[frames[0]])
            t0 = time.process_time()
            ours = list(track_view(pointmaps, masks, cam.K, model, start, init_width_m=width0))
            t_ours = time.process_time() - t0
            t0 = time.process_time()
            base = baseline_view(pointmaps, model, start)
            t_base = time.process_time() - t0
            T_world = cam.T_world_cam[frames]
            ours_world = T_world @ np.stack([f.T_cam_tool for f in ours])
            base_world = T_world @ np.stack(base)
            conf = np.array([f.confidence for f in ours])
            per_view["ours"].append((ours_world, conf, np.array([f.width_m for f in ours])))
            per_view["baseline"].append((base_world, np.ones(len(frames))))
            for method, poses, c, seconds in (
                ("ours", ours_world, conf, t_ours),
                ("baseline", base_world, np.ones(len(frames)), t_base),
            ):
                err = pose_errors(as_trajectory(scene, frames, poses, c), truth)
                rows.append(
                    {
                        "episode": path.stem,
                        "method": method,
                        "views": cam_name,
                        **err,
                        "fps": len(frames) / seconds,
                    }
                )
        names = list(scene.camera_names)
        poses = np.stack([p for p, _, _ in per_view["ours"]])
        conf = np.stack([c for _, c, _ in per_view["ours"]])
        width = np.stack([w for _, _, w in per_view["ours"]])
        fused, fconf, _, _ = combine_views(names, poses, conf, width, "fuse")
        err = pose_errors(as_trajectory(scene, frames, fused, fconf), truth)
        rows.append(
            {"episode": path.stem, "method": "ours", "views": "all (fused)", **err, "fps": float("nan")}
        )
    return rows


GENERATED_SOURCES = ("model", "recording (upper bound)", "start pose held (no tracking)")


def clip_starts(num_frames: int, span: int, clips: int) -> list[int]:
    """`clips` start frames spread evenly over those whose whole window (start + span) is recorded."""
    room = num_frames - span
    if room < 1:
        raise SystemExit(f"episodes of {num_frames} frames are too short for a {span}-frame clip window")
    return sorted({int((i + 0.5) * room / clips) for i in range(clips)})


def bench_generated(path, pipe, clips: int, steps: int, ref: str | None, other: str | None) -> list[dict]:
    """Per clip: the model's generation, the recording as a generation and the held start pose."""
    from geo4d_studio.diffusion.dataset import split_cameras
    from geo4d_studio.reference import recorded_clip
    from geo4d_studio.tracking import track_generation

    rows = []
    cfg = pipe.config
    with open_scene(path) as scene:
        held_out = split_cameras(scene.camera_names)[1]
        ref_cam = ref or held_out[0]
        other_cam = other or held_out[-1]
        span = cfg.frame_stride * cfg.num_future_frames
        for i, start in enumerate(clip_starts(scene.num_frames, span, clips)):
            t0 = time.perf_counter()
            gen = pipe(scene, ref_cam, other_cam, start, steps=steps, seed=i)
            gen_s = time.perf_counter() - t0
            gen.id = f"bench-{i:02d}"
            frames = np.asarray(gen.frame_indices, dtype=np.int64)
            upper = recorded_clip(scene, ref_cam, other_cam, start, frames)
            upper.id = f"bench-{i:02d}-recording"
            truth = scene.ee_pose[frames]
            held = np.broadcast_to(scene.ee_pose[start], truth.shape).copy()
            results = []
            for source, clip in ((GENERATED_SOURCES[0], gen), (GENERATED_SOURCES[1], upper)):
                t0 = time.process_time()
                traj = track_generation(scene, clip)
                results.append((source, pose_errors(traj, truth), time.process_time() - t0))
            held_traj = as_trajectory(scene, frames, held, np.ones(len(frames)))
            results.append((GENERATED_SOURCES[2], pose_errors(held_traj, truth), float("nan")))
            motion = float(np.linalg.norm(truth[-1, :3, 3] - scene.ee_pose[start, :3, 3]))
            for source, err, track_s in results:
                rows.append(
                    {
                        "episode": path.stem,
                        "views": f"{ref_cam}+{other_cam}",
                        "start": start,
                        "frames": f"{frames[0]}..{frames[-1]}",
                        "n": len(frames),
                        "source": source,
                        **err,
                        "motion_m": motion,
                        "gen_s": gen_s if source == GENERATED_SOURCES[0] else float("nan"),
                        "track_s": track_s,
                    }
                )
    return rows


def _num(value: float, scale: float = 1.0, digits: int = 1) -> str:
    return "lost" if not np.isfinite(value) else f"{value * scale:.{digits}f}"


def _opt(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.1f}"


def print_generated(rows: list[dict], steps: int) -> None:
    print(
        f"\ngenerated clips: shipped model, {steps} Euler steps, fused over views n and m; "
        "errors against /robot/ee_pose at the predicted frames\n"
    )
    print(
        "| episode | views n+m | start | frames | source | ATE mm | rot mean deg | tracked % "
        "| tool motion mm | generate s | track CPU s |"
    )
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['episode']} | {r['views']} | {r['start']} | {r['frames']} | {r['source']} | "
            f"{_num(r['ate_rmse_m'], 1000)} | {_num(r['rot_mean_deg'], digits=2)} | "
            f"{r['tracked_fraction'] * 100:.0f} | {r['motion_m'] * 1000:.0f} | "
            f"{_opt(r['gen_s'])} | {_opt(r['track_s'])} |"
        )
    print(
        "\n| source | clips | frames | tracked % | ATE mm (tracked frames, pooled) | rot mean deg (pooled) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for source in GENERATED_SOURCES:
        rs = [r for r in rows if r["source"] == source]
        n = np.array([r["n"] for r in rs], dtype=float)
        k = n * np.array([r["tracked_fraction"] for r in rs])
        ok = k > 0
        ate2 = np.array([r["ate_rmse_m"] for r in rs]) ** 2
        rot = np.array([r["rot_mean_deg"] for r in rs])
        ate = np.sqrt(np.sum(k[ok] * ate2[ok]) / k.sum()) if k.sum() else float("nan")
        rot_mean = np.sum(k[ok] * rot[ok]) / k.sum() if k.sum() else float("nan")
        print(
            f"| {source} | {len(rs)} | {int(n.sum())} | {k.sum() / n.sum() * 100:.0f} | "
            f"{_num(ate, 1000)} | {_num(rot_mean, digits=2)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--episodes", nargs="*", help="sample episode stems (default: all)")
    parser.add_argument("--generated", action="store_true", help="also track clips of the shipped model")
    parser.add_argument("--clips", type=int, default=2, help="generated clips per episode")
    parser.add_argument("--steps", type=int, default=25, help="Euler steps per generated clip")
    parser.add_argument("--ref", help="view n of the generated clips (default: first held-out camera)")
    parser.add_argument("--other", help="view m of the generated clips (default: last held-out camera)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for generation")
    parser.add_argument("--skip-recorded", action="store_true", help="only the generated-clip tables")
    args = parser.parse_args()
    paths = [p for p in sample_scenes() if not args.episodes or p.stem in args.episodes]
    if args.generated:
        import torch

        from geo4d_studio.diffusion.pipeline import Geo4DPipeline
        from geo4d_studio.paths import DEFAULT_MODEL_DIR

        torch.set_num_threads(args.threads)
        pipe = Geo4DPipeline.from_pretrained(DEFAULT_MODEL_DIR)
        gen_rows = [
            row
            for path in paths
            for row in bench_generated(path, pipe, args.clips, args.steps, args.ref, args.other)
        ]
    if not args.skip_recorded:
        print_recorded(paths, args.step)
    if args.generated:
        print_generated(gen_rows, args.steps)


def print_recorded(paths, step: int) -> None:
    rows = [row for path in paths for row in bench_episode(path, step)]
    print(f"frames: every {step}; speed = frames per CPU second per view (depth decoding excluded)\n")
    print(
        "| episode | method | views | ATE mm | rot mean deg | rot max deg | tracked % | frames/s per view |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        fps = "" if np.isnan(r["fps"]) else f"{r['fps']:.1f}"
        print(
            f"| {r['episode']} | {r['method']} | {r['views']} | {r['ate_rmse_m'] * 1000:.1f} | "
            f"{r['rot_mean_deg']:.2f} | {r['rot_max_deg']:.1f} | {r['tracked_fraction'] * 100:.0f} | {fps} |"
        )
    print("\n| method | mean ATE mm (single views) | mean ATE mm (fused) | fps per view | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    single = {
        m: [r for r in rows if r["method"] == m and r["views"] != "all (fused)"] for m in ("ours", "baseline")
    }
    base_fps = np.mean([r["fps"] for r in single["baseline"]])
    fused = [r["ate_rmse_m"] for r in rows if r["views"] == "all (fused)"]
    for method, rs in single.items():
        fps = np.mean([r["fps"] for r in rs])
        ate = np.nanmean([r["ate_rmse_m"] for r in rs]) * 1000
        fused_text = f"{np.mean(fused) * 1000:.1f}" if method == "ours" else ""
        print(f"| {method} | {ate:.1f} | {fused_text} | {fps:.1f} | {fps / base_fps:.2f}x |")


if __name__ == "__main__":
    main()

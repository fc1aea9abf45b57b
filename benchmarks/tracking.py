"""Gripper tracking accuracy and speed on the sample episodes, against a naive baseline in the same run.

Ours: `track_recorded` per view (constant velocity, crop, multi-scale point-to-plane ICP on the
re-posed model, width fit, confidence, re-initialisation) and all views fused. Baseline: one
single-scale point-to-plane ICP per frame of the whole uncropped cloud onto the rigid model, started
at the previous pose. Speed is frames per CPU second (`time.process_time`, all threads of this
process), which is what one free core would give even when other jobs share the machine. Both
start from the recorded first-frame pose; errors are against /robot/ee_pose (targets: ATE <= 5 mm,
mean rotation error <= 2 deg, >= 30 frames/s per view).

Usage: python benchmarks/tracking.py [--step 1] [--episodes pick_block_s0000 ...]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--episodes", nargs="*", help="sample episode stems (default: all)")
    args = parser.parse_args()
    paths = [p for p in sample_scenes() if not args.episodes or p.stem in args.episodes]
    rows = [row for path in paths for row in bench_episode(path, args.step)]
    print(f"frames: every {args.step}; speed = frames per CPU second per view (depth decoding excluded)\n")
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

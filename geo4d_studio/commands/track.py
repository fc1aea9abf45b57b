"""`geo4d-studio track`: track the gripper on recorded or generated RGB-D and write the trajectory."""

from __future__ import annotations

import argparse
import sys

from geo4d_studio.errors import Geo4DError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `track` sub-command."""
    parser = subparsers.add_parser(
        "track",
        help="track the gripper (6-DoF pose + opening) and write a trajectory",
        description="Track the gripper with Open3D registration on the recorded RGB-D or on a generation "
        "from the recording's results file, combine the views by confidence and write the trajectory "
        "(.csv .json .npz .txt/.tum). Prints the error against /robot/ee_pose when the recording has it.",
    )
    parser.add_argument("file", help="recording (.h5, geo4d-scene)")
    parser.add_argument(
        "--source",
        default="recorded",
        help="'recorded' (default) or a generation id from FILE's results file",
    )
    parser.add_argument(
        "--views",
        help="comma-separated cameras (default: all recorded cameras; for a generation: ref,other, or "
        "the generation's camera names)",
    )
    parser.add_argument(
        "--frames", help="recorded frames a:b or a:b:step (Python slice, recorded source only)"
    )
    parser.add_argument("--combine", choices=("fuse", "best"), default="fuse", help="how views are combined")
    parser.add_argument(
        "--format", choices=("csv", "json", "npz", "tum"), help="default: from --out's suffix"
    )
    parser.add_argument("--out", required=True, help="trajectory file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def parse_frames(text: str | None) -> slice | None:
    """'a:b' / 'a:b:step' / 'a' -> slice; Geo4DError on anything else."""
    if text is None:
        return None
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
    except ValueError:
        raise Geo4DError(f"--frames {text!r}: expected a:b or a:b:step with integers") from None
    if len(parts) == 1 and parts[0] is not None:
        return slice(parts[0], parts[0] + 1)
    if not 2 <= len(parts) <= 3 or (len(parts) == 3 and parts[2] is not None and parts[2] <= 0):
        raise Geo4DError(f"--frames {text!r}: expected a:b or a:b:step (step > 0)")
    return slice(*parts)


def _generation_views(generation, views: list[str] | None) -> list[str]:
    roles = {"ref": "ref", "other": "other", generation.ref_camera: "ref", generation.other_camera: "other"}
    if not views:
        return ["ref", "other"]
    unknown = [v for v in views if v not in roles]
    if unknown:
        raise Geo4DError(
            f"generation {generation.id}: no view {unknown[0]!r} (use ref, other, "
            f"{generation.ref_camera} or {generation.other_camera})"
        )
    return [roles[v] for v in views]


def run(args: argparse.Namespace) -> int:
    """Track, write the trajectory, print a summary (and the error vs ground truth when known)."""
    from tqdm import tqdm

    from geo4d_studio.atomic import check_writable
    from geo4d_studio.export.trajectory_io import format_for_path, write_trajectory
    from geo4d_studio.generation import load_generation, results_path_for
    from geo4d_studio.scene import open_scene
    from geo4d_studio.tracking.gripper_state import gripper_closed
    from geo4d_studio.tracking.metrics import pose_errors
    from geo4d_studio.tracking.scene_tracking import track_generation, track_recorded

    format_for_path(args.out, args.format)
    check_writable(args.out, overwrite=args.overwrite)
    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
    frames = parse_frames(args.frames)
    with (
        open_scene(args.file) as scene,
        tqdm(total=0, unit="frame", desc="tracking", disable=args.quiet, file=sys.stderr) as bar,
    ):

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        if args.source == "recorded":
            traj = track_recorded(scene, views, frames, combine=args.combine, progress=progress)
        else:
            if frames is not None:
                raise Geo4DError(
                    "--frames applies to --source recorded only (a generation tracks all its frames)"
                )
            generation = load_generation(results_path_for(scene.path), args.source)
            traj = track_generation(
                scene,
                generation,
                _generation_views(generation, views),
                combine=args.combine,
                progress=progress,
            )
        truth = None if scene.ee_pose is None else scene.ee_pose[traj.frames]
    write_trajectory(traj, args.out, args.format, overwrite=args.overwrite)
    closed = gripper_closed(traj.gripper_width)
    print(
        f"{args.out}: {len(traj)} frames, {int(traj.lost.sum())} lost, mean confidence "
        f"{float(traj.confidence.mean()):.2f}, gripper closed in {int((closed == 1).sum())} frames"
    )
    if truth is not None:
        err = pose_errors(traj, truth)
        what = (
            "recorded ee_pose"
            if args.source == "recorded"
            else "the recorded ee_pose at the generated frames"
        )
        print(
            f"vs {what}: ATE {err['ate_rmse_m'] * 1000:.1f} mm, rotation error mean "
            f"{err['rot_mean_deg']:.2f} deg (max {err['rot_max_deg']:.1f}), "
            f"tracked {err['tracked_fraction'] * 100:.0f}% of frames"
        )
    return 0

"""`geo4d-studio info`: what a recording holds (cameras, frames, robot data) and whether it is valid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` sub-command."""
    parser = subparsers.add_parser(
        "info",
        help="describe and validate a recording",
        description="Print a recording's cameras (size, intrinsics, static or moving), frames, fps, task, "
        "robot ground truth and file size, and validate it. Exit code 0 when valid, 2 when not.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="recording (.h5, geo4d-scene format)")
    parser.add_argument("--full", action="store_true", help="also read every pixel frame (NaN/inf, damage)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(run=run)


def summarize(path: Path, *, full: bool) -> dict[str, Any]:
    """The facts `info` prints, as plain JSON-ready values; `problems` is empty for a valid file."""
    from geo4d_studio.errors import SceneFormatError
    from geo4d_studio.scene import check_scene, open_scene

    report = check_scene(path, full=full)
    summary: dict[str, Any] = {
        "path": str(path),
        "valid": report.valid,
        "checked": "every frame" if full else "metadata",
        "problems": report.problems,
        "warnings": report.warnings,
    }
    try:
        scene = open_scene(path)
    except SceneFormatError:
        return summary
    with scene:
        summary |= {
            "file_size_bytes": path.stat().st_size,
            "task": scene.task,
            "source": scene.source,
            "frames": scene.num_frames,
            "fps": scene.fps,
            "duration_s": float(scene.timestamps[-1] - scene.timestamps[0]),
            "cameras": [
                {
                    "name": cam.name,
                    "width": cam.width,
                    "height": cam.height,
                    "fx": float(cam.K[0, 0]),
                    "fy": float(cam.K[1, 1]),
                    "cx": float(cam.K[0, 2]),
                    "cy": float(cam.K[1, 2]),
                    "static": cam.is_static,
                    "depth_scale_m": scene.depth_scale(cam.name),
                    "gripper_mask": scene.has_gripper_mask(cam.name),
                }
                for cam in scene.cameras.values()
            ],
            "robot": {
                "ee_pose": scene.ee_pose is not None,
                "gripper_width": scene.gripper_width is not None,
                "gripper_mesh": scene.gripper_mesh is not None,
            },
        }
    return summary


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_text(summary: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [summary["path"]]
    if "cameras" in summary:
        size_mb = summary["file_size_bytes"] / 1e6
        lines += [
            f"  task:     {summary['task'] or '-'}",
            f"  source:   {summary['source'] or '-'}",
            f"  frames:   {summary['frames']} at {summary['fps']:g} fps, {summary['duration_s']:.2f} s",
            f"  file:     {size_mb:.2f} MB",
            f"  cameras:  {len(summary['cameras'])}",
            f"    {'name':<12} {'size':>9} {'fx':>8} {'fy':>8} {'cx':>8} {'cy':>8}  pose    mask  depth",
        ]
        for cam in summary["cameras"]:
            depth = "float32" if cam["depth_scale_m"] is None else f"uint16 x {cam['depth_scale_m']:g} m"
            size = f"{cam['width']}x{cam['height']}"
            intrinsics = " ".join(f"{cam[k]:8.2f}" for k in ("fx", "fy", "cx", "cy"))
            motion, mask = "static" if cam["static"] else "moving", _yes(cam["gripper_mask"])
            lines.append(f"    {cam['name']:<12} {size:>9} {intrinsics}  {motion:<7} {mask:<5} {depth}")
        robot = summary["robot"]
        lines.append(
            f"  robot:    ee_pose {_yes(robot['ee_pose'])}, gripper_width {_yes(robot['gripper_width'])}, "
            f"gripper_mesh {_yes(robot['gripper_mesh'])}"
        )
    lines += [f"  warning:  {w}" for w in summary["warnings"]]
    if summary["valid"]:
        lines.append(f"  validation: valid ({summary['checked']} checked)")
    else:
        lines.append(f"  validation: {len(summary['problems'])} problem(s) ({summary['checked']} checked)")
        lines += [f"    - {p}" for p in summary["problems"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report; an invalid file ends with a one-line error (exit code 2)."""
    from geo4d_studio.errors import Geo4DError

    summary = summarize(args.file, full=args.full)
    print(json.dumps(summary, indent=2) if args.json else format_text(summary))
    problems = summary["problems"]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise Geo4DError(f"{problems[0]}{more}")
    return 0

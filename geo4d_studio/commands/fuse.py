"""`geo4d-studio fuse`: one frame of a recording, all (or some) views fused into a coloured PLY cloud."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `fuse` sub-command."""
    parser = subparsers.add_parser(
        "fuse",
        help="fuse the RGB-D views of one frame into a world point cloud (PLY)",
        description="Back-project every valid depth pixel of the chosen views of frame T into the world "
        "frame and write one coloured point cloud (binary PLY, metres).",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="recording (.h5, geo4d-scene format)")
    parser.add_argument("--frame", type=int, required=True, metavar="T", help="frame index (0-based)")
    parser.add_argument("--cameras", default=None, help="comma-separated camera names (default: all)")
    parser.add_argument("--voxel", type=float, default=None, metavar="M", help="voxel size in metres")
    parser.add_argument("--out", type=Path, required=True, help="output .ply path")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fuse, write the PLY atomically and print the point count."""
    from geo4d_studio.atomic import check_writable
    from geo4d_studio.errors import Geo4DError
    from geo4d_studio.export.ply import write_ply
    from geo4d_studio.geometry.fusion import fuse_frame
    from geo4d_studio.scene import open_scene

    if args.voxel is not None and args.voxel <= 0:
        raise Geo4DError(f"--voxel must be > 0 metres, got {args.voxel}")
    check_writable(args.out, overwrite=args.overwrite)
    cameras = [name.strip() for name in args.cameras.split(",") if name.strip()] if args.cameras else None
    with open_scene(args.file) as scene:
        points, colors = fuse_frame(scene, args.frame, cameras=cameras, voxel_m=args.voxel)
    write_ply(args.out, points, colors, overwrite=args.overwrite)
    print(f"{len(points)} points -> {args.out}")
    return 0

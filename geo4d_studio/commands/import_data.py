"""`geo4d-studio import robomimic|rlbench`: convert another layout into a geo4d scene file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `import` sub-command with one sub-command per source layout."""
    parser = subparsers.add_parser(
        "import",
        help="convert a robomimic demo or an RLBench episode into a scene file",
        description="Convert recordings in other layouts into the geo4d-scene format. Calibration (K, "
        "T_world_cam, depth encoding) comes from a JSON/NPZ file: see geo4d_studio/scene/importers/"
        "calibration.py for its layout.",
    )
    layouts = parser.add_subparsers(dest="layout", metavar="LAYOUT", required=True)
    robomimic = layouts.add_parser("robomimic", help="one demo of a robomimic HDF5 dataset")
    robomimic.add_argument("src", type=Path, help="robomimic .hdf5 file")
    robomimic.add_argument("--demo", default="demo_0", help="demo group under /data (default demo_0)")
    robomimic.add_argument("--calibration", type=Path, required=True, help="camera calibration JSON/NPZ")
    robomimic.add_argument(
        "--flip-vertical", action="store_true", help="images are stored upside down (OpenGL convention)"
    )
    rlbench = layouts.add_parser("rlbench", help="one RLBench episode folder (<camera>_rgb/, _depth/)")
    rlbench.add_argument("src", type=Path, help="episode folder")
    rlbench.add_argument(
        "--calibration", type=Path, help="camera calibration JSON/NPZ (default: <episode>/calibration.json)"
    )
    for sub in (robomimic, rlbench):
        sub.add_argument("out", type=Path, help="scene file to write (.h5)")
        sub.add_argument("--cameras", help="comma-separated camera names (default: all)")
        sub.add_argument("--fps", type=float, help="frame rate, when the source does not store it")
        sub.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        sub.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Convert, then print where the scene went."""
    from geo4d_studio.scene.importers.rlbench import import_rlbench
    from geo4d_studio.scene.importers.robomimic import import_robomimic

    options = {
        "calibration": args.calibration,
        "cameras": args.cameras.split(",") if args.cameras else None,
        "fps": args.fps,
        "overwrite": args.overwrite,
    }
    if args.layout == "robomimic":
        out = import_robomimic(
            args.src, args.out, demo=args.demo, flip_vertical=args.flip_vertical, **options
        )
    else:
        out = import_rlbench(args.src, args.out, **options)
    print(f"wrote {out} (check it with: geo4d-studio info {out})")
    return 0

"""`geo4d-studio export`: a generation (or the recording) as MP4, HDF5 scene, PLY clouds or trajectory."""

from __future__ import annotations

import argparse

from geo4d_studio.errors import Geo4DError

WHAT = ("mp4", "scene", "ply", "trajectory")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a generation as MP4 / HDF5 scene / PLY clouds / tracked trajectory",
        description="mp4: recorded | generated side by side per view, depth colour-mapped below. "
        "scene: the generation as a geo4d-scene file. ply: fused world clouds per frame (one file, or "
        "<stem>_<frame>.ply per frame). trajectory: track the generation and write it. ply and "
        "trajectory work on the recording itself when --generation is not given.",
    )
    parser.add_argument("file", help="recording (.h5, geo4d-scene); generations come from its results file")
    parser.add_argument("--generation", help="generation id (e.g. gen-0001)")
    parser.add_argument("--what", choices=WHAT, required=True)
    parser.add_argument("--out", required=True, help="output file (PLY sequences: the name pattern)")
    parser.add_argument("--view", choices=("ref", "other"), default="ref", help="mp4: which view")
    parser.add_argument("--frame", type=int, help="ply: only this recorded frame")
    parser.add_argument("--format", choices=("csv", "json", "npz", "tum"), help="trajectory format")
    parser.add_argument("--no-depth", action="store_true", help="mp4: RGB row only")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(run=run)


def _ply(scene, generation, args) -> list:
    from geo4d_studio.export.clips import write_generation_ply, write_recorded_ply

    if generation is None:
        frames = list(range(scene.num_frames)) if args.frame is None else [args.frame]
        bad = [f for f in frames if not 0 <= f < scene.num_frames]
        if bad:
            raise Geo4DError(f"{scene.path}: --frame {bad[0]} out of range 0..{scene.num_frames - 1}")
        return write_recorded_ply(scene, args.out, frames, overwrite=args.overwrite)
    indices = None
    if args.frame is not None:
        slot = generation.frame_slot(args.frame)
        if slot is None:
            raise Geo4DError(
                f"generation {generation.id}: --frame {args.frame} is not one of its frames "
                f"{generation.frame_indices.tolist()}"
            )
        indices = [slot]
    return write_generation_ply(scene, generation, args.out, indices=indices, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    """Export and print the paths written."""
    from geo4d_studio.atomic import check_writable
    from geo4d_studio.export import clips
    from geo4d_studio.export.trajectory_io import write_trajectory
    from geo4d_studio.generation import load_generation, results_path_for
    from geo4d_studio.scene import open_scene

    if args.generation is None and args.what in ("mp4", "scene"):
        raise Geo4DError(f"--what {args.what} needs --generation ID")
    if args.what != "ply":
        check_writable(args.out, overwrite=args.overwrite)
    with open_scene(args.file) as scene:
        generation = None
        if args.generation is not None:
            generation = load_generation(results_path_for(scene.path), args.generation)
        if args.what == "mp4":
            paths = [
                clips.write_comparison_mp4(
                    scene,
                    generation,
                    args.out,
                    args.view,
                    with_depth=not args.no_depth,
                    overwrite=args.overwrite,
                )
            ]
        elif args.what == "scene":
            paths = [clips.write_generation_scene(scene, generation, args.out, overwrite=args.overwrite)]
        elif args.what == "ply":
            paths = _ply(scene, generation, args)
        else:
            from geo4d_studio.tracking.scene_tracking import track_generation, track_recorded

            traj = track_recorded(scene) if generation is None else track_generation(scene, generation)
            paths = [write_trajectory(traj, args.out, args.format, overwrite=args.overwrite)]
    for path in paths:
        print(path)
    return 0

"""`geo4d-studio generate`: predict the future RGB-D of two views and save it to the results file."""

from __future__ import annotations

import argparse
import sys
import threading

from geo4d_studio.paths import DEFAULT_MODEL_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `generate` sub-command."""
    parser = subparsers.add_parser(
        "generate",
        help="predict future RGB-D + pointmaps of two views with the 4D diffusion model",
        description="Generate the future of a reference view and a second view from one recorded frame; "
        "the result goes to <recording>.results.h5 beside the recording (or --results).",
    )
    parser.add_argument("file", help="recording (.h5, geo4d-scene format)")
    parser.add_argument("--ref", required=True, help="reference camera (view n)")
    parser.add_argument("--other", required=True, help="second camera (view m)")
    parser.add_argument("--frame", type=int, required=True, help="recorded frame to start from")
    parser.add_argument("--frames", type=int, default=None, help="future frames (default: the model's)")
    parser.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    parser.add_argument(
        "--guidance", type=float, default=2.5, help="guidance at the last frame (default 2.5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default: shipped model)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--results", default=None, help="results file (default: <recording>.results.h5)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the model and the recording, sample with a progress bar, save, print the id and path."""
    from pathlib import Path

    from tqdm import tqdm

    from geo4d_studio.atomic import check_writable
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline
    from geo4d_studio.diffusion.sampler import GenerationCancelled
    from geo4d_studio.errors import OutputPathError
    from geo4d_studio.generation import results_path_for, save_generation
    from geo4d_studio.interrupts import first_interrupt_sets
    from geo4d_studio.scene import open_scene

    results = Path(args.results) if args.results else results_path_for(args.file)
    try:
        check_writable(results, overwrite=True)
    except OutputPathError as err:
        raise OutputPathError(results, f"{err.problem}; choose another file with --results PATH") from err
    pipe = Geo4DPipeline.from_pretrained(args.model, device=args.device)
    cancelled = threading.Event()  # a first Ctrl-C: the sampler stops after the current step
    with open_scene(args.file) as scene, first_interrupt_sets(cancelled):
        bar = tqdm(total=args.steps, desc="generate", unit="step", file=sys.stderr, delay=0.5)

        def on_step(step: int, num_steps: int, preview) -> bool:
            bar.update(step - bar.n)
            return not cancelled.is_set()

        try:
            generation = pipe(
                scene,
                args.ref,
                args.other,
                args.frame,
                num_frames=args.frames,
                steps=args.steps,
                guidance=args.guidance,
                seed=args.seed,
                callback_on_step_end=on_step,
            )
        except GenerationCancelled as err:
            print(f"geo4d-studio: generation {err}; nothing saved", file=sys.stderr)
            return 130
        finally:
            bar.close()
    kept, generated = len(generation.frame_indices), generation.params["num_frames_generated"]
    if kept < generated:
        print(
            f"geo4d-studio: note: the recording ends at frame {generation.frame_indices[-1]}; "
            f"{kept} of the {generated} generated frames are kept",
            file=sys.stderr,
        )
    gen_id = save_generation(results, generation)
    print(f"{gen_id} {results}")
    return 0

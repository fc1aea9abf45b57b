"""`geo4d-studio evaluate`: score exported models on held-out cameras; write a Markdown or CSV report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score models on held-out cameras (PSNR/SSIM, AbsRel/δ1, gripper mIoU, FVD)",
        description="Generates clips for pairs of held-out cameras and compares them with the recording. "
        "Several --model folders are scored on the same clips (one column each). FVD needs --i3d. "
        "Ctrl-C finishes the clip under way and reports the clips done (a second Ctrl-C aborts).",
    )
    parser.add_argument("--model", type=Path, nargs="+", required=True, help="exported model folder(s)")
    parser.add_argument("--data", type=Path, required=True, help="episode file or directory of episodes")
    parser.add_argument("--pairs", type=int, default=8, help="distinct clips to evaluate (default 8)")
    parser.add_argument("--steps", type=int, default=25, help="sampling steps (default 25)")
    parser.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance (default 2.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed for clip choice and sampling")
    parser.add_argument("--i3d", type=Path, help="I3D weights (.safetensors) to compute FVD")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="add a column for the trivial prediction: the condition frame repeated (nothing moves)",
    )
    parser.add_argument(
        "--autoencoders",
        action="store_true",
        help="add a column for the recorded future encoded and decoded by the first model's VAEs: "
        "the closest any denoiser of that model can come",
    )
    parser.add_argument(
        "--out",
        type=Path,
        nargs="+",
        required=True,
        help="report path(s) ending in .md or .csv (one or both)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate with a progress bar over all clips of all columns, write the report, print the table.

    A first Ctrl-C finishes the clip under way, then reports the clips done (exit 130)."""
    import sys
    import threading

    from tqdm import tqdm

    from geo4d_studio.diffusion.evaluate import check_report_path, evaluate, format_markdown, write_report
    from geo4d_studio.interrupts import first_interrupt_sets

    for out in args.out:
        check_report_path(out, overwrite=args.overwrite)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    stop = threading.Event()
    with (
        first_interrupt_sets(stop),
        tqdm(desc="evaluate", unit="clip", file=sys.stderr, delay=0.5) as bar,
    ):

        def on_clip(column: str, done: int, total: int) -> None:
            if stop.is_set():
                bar.set_description("Ctrl-C: finishing this clip (again: abort)", refresh=False)
            bar.total = total
            bar.set_postfix_str(column, refresh=False)
            bar.update(done - bar.n)

        results = evaluate(
            args.model,
            args.data,
            num_pairs=args.pairs,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            i3d_path=args.i3d,
            baseline=args.baseline,
            autoencoders=args.autoencoders,
            on_clip=on_clip,
            stop=stop,
        )
    done = len(results[0].pairs)
    if not done:
        print("geo4d-studio: stopped before the first clip was finished; no report written", file=sys.stderr)
        return 130
    settings = {
        "data": str(args.data),
        "clips": args.pairs if done == args.pairs else f"{done} of {args.pairs} (stopped by Ctrl-C)",
        "sampling steps": args.steps,
        "guidance": args.guidance,
        "seed": args.seed,
        "models": ", ".join(str(m) for m in args.model),
    }
    for out in args.out:
        write_report(results, out, settings, overwrite=args.overwrite)
    summary = format_markdown(results, settings).split("## Per clip")[0]
    print(summary.rstrip())
    print(f"report written to {', '.join(str(out) for out in args.out)}")
    return 0 if done == args.pairs else 130

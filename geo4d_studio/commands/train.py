"""`geo4d-studio train`: train the VAEs and the multi-view U-Net on episode files, export a pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geo4d_studio.diffusion.config import TRAINING_PHASES, VAE_LR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train the 4D diffusion model on recorded episodes",
        description="Three phases: RGB VAE, pointmap VAE (initialised from the RGB VAE), U-Net with the "
        "EDM loss (VAEs frozen). Checkpoints and a log go to --out; the EMA U-Net is exported with the "
        "VAEs to OUT/pipeline. Ctrl-C stops after the current step with a checkpoint and an export (a second "
        "Ctrl-C aborts); --resume continues. Multi-GPU: `accelerate launch -m geo4d_studio train ...`.",
    )
    parser.add_argument(
        "--config",
        default="small",
        help="model preset (tiny, small, paper; default small) or a JSON file of model-config fields, "
        "those left out taking small's values (e.g. a pipeline's geo4d_config.json, edited)",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="directory of episode .h5 files (or one file)"
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, log, export)")
    parser.add_argument("--steps", type=int, default=2000, help="U-Net steps (default 2000)")
    parser.add_argument("--vae-steps", type=int, default=500, help="steps for each VAE phase (default 500)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument(
        "--init-from",
        type=Path,
        help="local Stable Video Diffusion folder to initialise from, or an exported pipeline (e.g. model/) "
        "to fine-tune (its VAEs are kept: the VAE phases are skipped)",
    )
    parser.add_argument(
        "--vaes-from",
        type=Path,
        help="exported pipeline or run directory whose VAEs to reuse (skips phases 1-2)",
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=TRAINING_PHASES,
        help="run only these phases (default: all three, or only unet with --vaes-from or --init-from a "
        "pipeline); e.g. --init-from model --phases pointmap_vae --vae-decoder-only refines the shipped "
        "pointmap VAE's decoder",
    )
    parser.add_argument(
        "--vae-decoder-only",
        action="store_true",
        help="VAE phases train only the decoders: the latent space, and so a U-Net trained on it, stays "
        "valid (with --init-from or --vaes-from a pipeline)",
    )
    parser.add_argument(
        "--no-cross-view-attention", action="store_true", help="ablation: views do not attend"
    )
    parser.add_argument("--no-3d-loss", action="store_true", help="ablation: drop the cross-view 3D loss")
    parser.add_argument("--batch-size", type=int, default=2, help="clips per U-Net step (default 2)")
    parser.add_argument("--vae-batch", type=int, default=8, help="frames per VAE step (default 8)")
    parser.add_argument(
        "--workers", type=int, default=0, help="data-loading processes (default 0: the training process)"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this long: checkpoint and export; --resume continues",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=1e-4,
        help="U-Net learning rate (default 1e-4)",
    )
    parser.add_argument(
        "--vae-lr",
        type=float,
        default=VAE_LR,
        help=f"VAE peak learning rate: warm-up, then cosine decay to 0 over --vae-steps (default {VAE_LR:g})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    parser.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    parser.add_argument(
        "--sample-every",
        type=int,
        default=500,
        help="steps between held-out samples (OUT/samples/: pictures and samples.jsonl; also at each "
        "phase's end; 0: none; default 500)",
    )
    parser.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    parser.add_argument("--fp16", action="store_true", help="export the pipeline weights in float16")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the options from the arguments and train."""
    from geo4d_studio.diffusion.train import TrainOptions, train
    from geo4d_studio.errors import Geo4DError

    if args.workers < 0:
        raise Geo4DError(f"--workers {args.workers}: must be 0 (load in this process) or more")
    if args.sample_every < 0:
        raise Geo4DError(f"--sample-every {args.sample_every}: must be 0 (no samples) or more")
    if args.max_minutes is not None and not args.max_minutes >= 0:
        raise Geo4DError(f"--max-minutes {args.max_minutes:g}: must be 0 or more")
    for flag, rate in (("--lr", args.lr), ("--vae-lr", args.vae_lr)):
        if not rate > 0:
            raise Geo4DError(f"{flag} {rate:g}: must be more than 0")
    opts = TrainOptions(
        preset=args.config,
        data=args.data,
        out=args.out,
        unet_steps=args.steps,
        vae_steps=args.vae_steps,
        resume=args.resume,
        init_from=args.init_from,
        vaes_from=args.vaes_from,
        cross_view_attention=not args.no_cross_view_attention,
        use_3d_loss=not args.no_3d_loss,
        phases=tuple(args.phases) if args.phases else None,
        vae_decoder_only=args.vae_decoder_only,
        batch_size=args.batch_size,
        vae_batch=args.vae_batch,
        workers=args.workers,
        max_minutes=args.max_minutes,
        lr=args.lr,
        vae_lr=args.vae_lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        sample_every=args.sample_every,
        gradient_checkpointing=args.gradient_checkpointing,
        fp16_export=args.fp16,
        threads=args.threads,
    )
    if opts.leaves_unet_stale():
        print(
            "warning: the VAE phases change the latents the fine-tuned U-Net was trained on and the U-Net is "
            "not trained here; the exported pipeline's U-Net will not match them (--vae-decoder-only keeps "
            "them; or train the unet phase too)",
            file=sys.stderr,
        )
    summary = train(opts)
    print(
        f"exported {summary['export_dir']} ({summary['steps_done']} steps, {summary['elapsed_min']:.1f} min)"
    )
    if summary["stopped"]:
        print(f"stopped ({summary['stopped']}); --resume continues from the checkpoint")
    error_m = summary["pointmap_vae_median_error_m"]
    if error_m is not None:
        train_error_m = summary["pointmap_vae_median_train_error_m"]
        print(
            f"pointmap VAE median error: {1000 * error_m:.2f} mm on held-out cameras, "
            f"{1000 * train_error_m:.2f} mm on training cameras"
        )
    return 0

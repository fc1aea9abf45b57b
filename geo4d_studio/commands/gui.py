"""`geo4d-studio [FILE]` / `geo4d-studio gui`: the desktop Studio (or a headless screenshot of it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from geo4d_studio.paths import DEFAULT_MODEL_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gui` sub-command (also what `geo4d-studio` without a command runs)."""
    parser = subparsers.add_parser(
        "gui",
        help="open the Studio (default when no command is given)",
        description="Open the Studio on FILE, or on the shipped sample episode without one.",
    )
    parser.add_argument("file", nargs="?", type=Path, help="recording (.h5) to open")
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: %(default)s)"
    )
    parser.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="render the window once, save it as PNG and exit"
    )
    parser.add_argument("--frame", type=int, help="time cursor for --screenshot (frame index)")
    parser.add_argument(
        "--generation", metavar="ID", help="generation to show for --screenshot ('latest' for the newest)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Start Qt and the main window (heavy imports happen here)."""
    from geo4d_studio.qt.app import run_studio

    return run_studio(
        args.file, args.model, screenshot=args.screenshot, frame=args.frame, generation=args.generation
    )

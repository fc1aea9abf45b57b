"""The `geo4d-studio` command line: one sub-command per module in `geo4d_studio.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from geo4d_studio import __version__
from geo4d_studio.commands import COMMANDS
from geo4d_studio.errors import Geo4DError


def build_parser() -> argparse.ArgumentParser:
    """The full parser; sub-command modules import heavy packages only when run."""
    parser = argparse.ArgumentParser(
        prog="geo4d-studio",
        description="Geo4D Studio: multi-view RGB-D robot video, a geometry-aware 4D diffusion model, "
        "gripper tracking. Without a sub-command, opens the Studio (optionally on FILE).",
    )
    parser.add_argument("--version", action="version", version=f"geo4d-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"geo4d_studio.commands.{module}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for user errors, 130 for Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["gui", *argv]  # `geo4d-studio [FILE]` opens the Studio
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except Geo4DError as err:
        print(f"geo4d-studio: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geo4d-studio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`geo4d-studio gui` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gui` sub-command."""
    parser = subparsers.add_parser("gui", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("gui: not yet available") or 1)

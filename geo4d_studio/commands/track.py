"""`geo4d-studio track` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `track` sub-command."""
    parser = subparsers.add_parser("track", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("track: not yet available") or 1)

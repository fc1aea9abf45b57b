"""`geo4d-studio fuse` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `fuse` sub-command."""
    parser = subparsers.add_parser("fuse", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("fuse: not yet available") or 1)

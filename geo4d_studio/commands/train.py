"""`geo4d-studio train` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` sub-command."""
    parser = subparsers.add_parser("train", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("train: not yet available") or 1)

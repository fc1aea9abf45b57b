"""`geo4d-studio generate` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `generate` sub-command."""
    parser = subparsers.add_parser("generate", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("generate: not yet available") or 1)

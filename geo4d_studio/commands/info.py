"""`geo4d-studio info` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` sub-command."""
    parser = subparsers.add_parser("info", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("info: not yet available") or 1)

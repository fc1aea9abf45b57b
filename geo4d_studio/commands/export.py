"""`geo4d-studio export` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser("export", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("export: not yet available") or 1)

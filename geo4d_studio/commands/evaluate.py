"""`geo4d-studio evaluate` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    parser = subparsers.add_parser("evaluate", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("evaluate: not yet available") or 1)

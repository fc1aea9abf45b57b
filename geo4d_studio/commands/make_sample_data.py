"""`geo4d-studio make-sample-data` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `make-sample-data` sub-command."""
    parser = subparsers.add_parser("make-sample-data", help="(not yet available)")
    parser.set_defaults(run=lambda args: print("make-sample-data: not yet available") or 1)

"""`tinymeter` subcommands of the hardware side (flash, measure, calibrate)."""

from __future__ import annotations

import argparse


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register the hardware subcommands on the main parser's subparsers."""
    del sub

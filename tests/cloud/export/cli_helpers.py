"""Running ``ferry export`` in-process, the way ``actors.cli.main`` does."""

from __future__ import annotations

import argparse

from cloud.export.cli import register


def build_parser() -> argparse.ArgumentParser:
    """A ``ferry`` parser with only ``export`` (the lead adds it to ``actors.cli``)."""
    parser = argparse.ArgumentParser(prog="ferry")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    return parser


def ferry(*argv: str) -> int:
    """``ferry export ...``'s exit status (``SystemExit`` from argparse becomes its code)."""
    try:
        args = build_parser().parse_args(["export", *argv])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    status: int = args.handler(args)
    return status

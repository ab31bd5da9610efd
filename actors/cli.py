"""The ``ferry`` command line: one argparse parser, one module per subcommand.

Each subcommand lives in its own module and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` (a ``Handler``) as a default. Adding a
command is one import and one entry in ``_COMMANDS``. Modules should keep their
heavy imports (trio, grpclib) inside the handler, so ``ferry inspect`` and
``ferry --help`` stay fast.

Example::

    $ ferry inspect --summary ~/.ferry/sample-capture
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TypeAlias

import actors.inspect_cmd as inspect_cmd
import actors.run_cmd as run_cmd
import actors.status_cmd as status_cmd
import actors.sync_cmd as sync_cmd
import cloud.cli as cloud_cli
import cloud.export.cli as export_cli
import sim.cli as sim_cli

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]
Register: TypeAlias = Callable[[Subparsers], None]

# Order is the order `ferry --help` lists them in.
_COMMANDS: tuple[Register, ...] = (
    run_cmd.register,
    status_cmd.register,
    sync_cmd.register,
    inspect_cmd.register,
    cloud_cli.register,
    export_cli.register,
    sim_cli.register,
)

# Exit status after stdout's reader went away (`ferry inspect dir | head`).
EXIT_BROKEN_PIPE = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The ``ferry`` parser with every registered subcommand.

    Returns:
        A parser whose parsed namespace carries ``handler``.
    """
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Ferry: data capture and sync agent for robots (Viam-compatible).",
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    for register in _COMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one ``ferry`` command and returns its exit status.

    The console script calls ``sys.exit(main())``.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The command's exit status (0 on success).

    Raises:
        SystemExit: from argparse, for ``--help`` (status 0) and usage errors (status 2).

    Example::

        status = main(["inspect", "--summary", "/tmp/capture"])
    """
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _detach_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe a second
    # time; point it at /dev/null first (recipe from the `signal` module docs).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. under pytest)
        pass


if __name__ == "__main__":  # pragma: no cover - `python -m actors.cli`, same as the script
    sys.exit(main())

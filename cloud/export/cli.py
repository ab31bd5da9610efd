"""``ferry export``: download filtered data from a Ferry cloud into local files.

Registered by ``actors.cli``; this module imports only the standard library,
and the handler imports the rest (grpclib included) when it runs. Every
problem ends as one line on stderr, ``ferry export: <what is wrong>``, with
exit status 2 for usage errors and 1 for failures; see ``docs/export.md``.

Example::

    $ FERRY_API_KEY_ID=... FERRY_API_KEY=... ferry export --address 127.0.0.1:8080 \\
          --out ./export --component cam --start 2024-05-01T00:00:00Z
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cloud.aio_loop import run_asyncio

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cloud.export.client import Credentials, Endpoint
    from cloud.export.progress import Progress
    from cloud.export.run import ExportPlan, Outcome

ENV_KEY_ID = "FERRY_API_KEY_ID"
ENV_KEY = "FERRY_API_KEY"
EXIT_INTERRUPTED = 130
_KINDS = {"tabular": ("tabular",), "binary": ("binary",), "both": ("tabular", "binary")}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry export``."""
    p = subparsers.add_parser(
        "export",
        help="download data from a Ferry cloud into files",
        description="Download readings (JSON Lines or CSV) and binary files from a Ferry "
        "cloud server, filtered. An interrupted export resumes when run again.",
    )
    p.add_argument("--address", required=True, metavar="HOST:PORT", help="the cloud server")
    p.add_argument("--key-id", metavar="ID", help=f"API key id (default ${ENV_KEY_ID})")
    p.add_argument(
        "--key", metavar="KEY", help=f"API key secret (default ${ENV_KEY}; prefer the variable)"
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", help="use TLS with the system's CAs")
    tls.add_argument("--tls-ca", type=Path, metavar="FILE", help="use TLS trusting this PEM CA")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--kind", choices=tuple(_KINDS), default="both", help="what to export (default both)"
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("jsonl", "csv"),
        default="jsonl",
        help="readings' format (default jsonl)",
    )
    p.add_argument("--part", default="", metavar="ID", help="only this part id")
    p.add_argument("--component", default="", metavar="NAME", help="only this component")
    p.add_argument("--component-type", default="", metavar="T", help="e.g. rdk:component:sensor")
    p.add_argument("--method", default="", metavar="M", help="only this method, e.g. Readings")
    p.add_argument("--start", metavar="ISO8601", help="time_requested >= this (UTC if no zone)")
    p.add_argument("--end", metavar="ISO8601", help="time_requested <= this (UTC if no zone)")
    p.add_argument(
        "--tag",
        dest="tags",
        nargs="+",
        action="extend",
        default=[],
        metavar="T",
        help="only data with any of these tags (repeatable)",
    )
    p.add_argument(
        "--page-size", type=_positive, metavar="N", help="items per request (default 1000/50)"
    )
    p.add_argument("--restart", action="store_true", help="discard an export already in DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, summary only")
    p.set_defaults(handler=_export)


def parse_time(text: str, flag: str) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times are UTC).

    Raises:
        UsageError: ``text`` is not ISO 8601.
    """
    from cloud.export.source import UsageError

    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)"
        ) from None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``.

    Raises:
        UsageError: no port, or a port outside 1-65535.
    """
    from cloud.export.source import UsageError

    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {text!r} must be HOST:PORT (e.g. 127.0.0.1:8080)")
    return host, int(port)


def credentials(args: argparse.Namespace, env: Mapping[str, str]) -> Credentials:
    """The API key from ``--key-id``/``--key``, each falling back to its variable.

    Raises:
        UsageError: the key id or the key is missing.
    """
    from cloud.export.client import Credentials
    from cloud.export.source import UsageError

    key_id = args.key_id or env.get(ENV_KEY_ID, "")
    key = args.key or env.get(ENV_KEY, "")
    missing = [what for what, value in (("key id", key_id), ("key", key)) if not value]
    if missing:
        flags = " and ".join(missing)
        raise UsageError(
            f"no API {flags}: pass --key-id and --key, or set {ENV_KEY_ID} and {ENV_KEY}"
        )
    return Credentials(key_id, key)


def build_plan(args: argparse.Namespace) -> ExportPlan:
    """The ``ExportPlan`` of the parsed arguments.

    Raises:
        UsageError: a bad time, or ``--start`` after ``--end``.
    """
    from cloud.export.run import ExportPlan
    from cloud.export.source import FilterSpec, Kind, UsageError

    start = parse_time(args.start, "--start") if args.start else None
    end = parse_time(args.end, "--end") if args.end else None
    if start and end and start > end:
        raise UsageError(f"--start {args.start} is after --end {args.end}")
    spec = FilterSpec(
        part_id=args.part,
        component_name=args.component,
        component_type=args.component_type,
        method=args.method,
        start=start,
        end=end,
        tags=tuple(dict.fromkeys(args.tags)),
    )
    kinds = tuple(Kind(name) for name in _KINDS[args.kind])
    return ExportPlan(args.out, spec, kinds, args.fmt, args.page_size, args.restart)


def endpoint(args: argparse.Namespace) -> Endpoint:
    """Where to connect, with a TLS context for ``--tls``/``--tls-ca``."""
    from cloud.export.client import Endpoint, tls_context

    host, port = parse_address(args.address)
    tls = tls_context(args.tls_ca) if args.tls or args.tls_ca else None
    return Endpoint(host, port, tls)


def _export(args: argparse.Namespace) -> int:
    import time

    from cloud.export.progress import Progress
    from cloud.export.source import ExportError

    started = time.monotonic()
    progress = Progress(sys.stderr, live=not args.no_progress and sys.stderr.isatty())
    plan = None
    try:
        plan = build_plan(args)
        target = endpoint(args)
        creds = credentials(args, os.environ)
        outcome = run_asyncio(_run(target, creds, plan, progress))
    except ExportError as exc:
        hint = _resume_hint(plan) if exc.exit_status == 1 else ""
        print(f"ferry export: {exc}{hint}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"ferry export: interrupted{_resume_hint(plan)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.summary(summary(plan, outcome, time.monotonic() - started))
    return 0


async def _run(
    target: Endpoint, creds: Credentials, plan: ExportPlan, progress: Progress
) -> Outcome:
    from cloud.export.client import open_source
    from cloud.export.run import export

    return await export(lambda: open_source(target, creds, plan.spec), plan, progress)


def _resume_hint(plan: ExportPlan | None) -> str:
    """`` (N items saved; ...)`` when an unfinished export in ``plan.out`` can resume."""
    from cloud.export.source import ExportError
    from cloud.export.state import STATE_NAME, load_state

    if plan is None:
        return ""
    try:
        state = load_state(plan.out / STATE_NAME)
    except ExportError:
        return ""
    saved = sum(k.items for k in state.kinds.values()) if state else 0
    if state is None or state.complete or not saved:
        return ""
    return f" ({saved} items saved; run the same command again to resume)"


def summary(plan: ExportPlan, outcome: Outcome, elapsed_s: float) -> str:
    """The final line: what was exported, where, and how long this run took."""
    from cloud.export.progress import human_bytes
    from cloud.export.source import Kind

    parts = []
    for kind in plan.kinds:
        done = outcome.state.of(kind)
        noun = "readings" if kind is Kind.TABULAR else "files"
        parts.append(f"{done.items} {noun} ({human_bytes(done.nbytes)}) in {plan.output(kind)}")
    what = "; ".join(parts)
    if outcome.already_complete:
        return f"ferry export: {plan.out} is already complete: {what} (--restart to redo)"
    return f"ferry export: done in {elapsed_s:.1f} s: {what}"

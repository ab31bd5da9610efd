"""``ferry sync``: a manual sync of a running agent, optionally waiting with a progress bar."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from actors.run_cmd import add_api_argument, find_error

if TYPE_CHECKING:
    import argparse

    from actors.codec import JsonObject, JsonValue

EXIT_UNREACHABLE = 1
EXIT_FAILED = 2
PROGRESS_INTERVAL_S = 0.5
BAR_WIDTH = 30


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry sync``."""
    parser = subparsers.add_parser(
        "sync",
        help="sync a running agent's files now",
        description="Ask a running agent (ferry run) to sync now, whatever its schedule "
        "(sync_disabled stops only scheduled syncs). Without --wait it returns once every "
        "ready file is handed to an upload worker.",
    )
    add_api_argument(parser, "the agent's local API (default 127.0.0.1:8085)")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="return only when every file pending now is confirmed by the cloud (or failed)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="first move every file in failed/ back, so it is uploaded again",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import grpclib.exceptions
    import trio

    host, port = args.api
    extra: JsonObject = {"wait": bool(args.wait), "retry_failed": bool(args.retry_failed)}
    try:
        status = trio.run(_sync, host, port, extra, sys.stderr)
    except (OSError, grpclib.exceptions.GRPCError, BaseExceptionGroup) as exc:
        # Trio and trio-asyncio nurseries wrap errors in groups: look inside.
        found = find_error(exc, (OSError, grpclib.exceptions.GRPCError))
        if isinstance(found, OSError):
            print(f"ferry sync: no agent answers at {host}:{port} ({found})", file=sys.stderr)
            return EXIT_UNREACHABLE
        if isinstance(found, grpclib.exceptions.GRPCError):
            print(f"ferry sync: {found.message}", file=sys.stderr)
            return EXIT_FAILED
        raise
    print(summarize(status, waited=bool(args.wait)))
    return EXIT_FAILED if args.wait and _int(_manual(status).get("failed")) else 0


async def _sync(host: str, port: int, extra: JsonObject, out: TextIO) -> JsonObject:
    """Runs the manual sync (showing progress while it waits); returns the status after it."""
    import trio

    from actors.adapters.aio import open_aio_loop
    from actors.adapters.grpc_local_client import fetch_status, request_sync

    async with open_aio_loop():
        async with trio.open_nursery() as nursery:
            if extra.get("wait"):
                nursery.start_soon(_show_progress, host, port, out)
            await request_sync(host, port, extra)
            nursery.cancel_scope.cancel()
        if extra.get("wait") and out.isatty():
            out.write("\n")
        return await fetch_status(host, port)


async def _show_progress(host: str, port: int, out: TextIO) -> None:
    import trio

    from actors.adapters.grpc_local_client import fetch_status

    tty = out.isatty()
    last = ""
    while True:
        await trio.sleep(PROGRESS_INTERVAL_S)
        try:
            status = await fetch_status(host, port)
        except OSError:
            continue
        line = progress_line(status)
        if line and line != last:
            out.write(f"\r{line}" if tty else f"{line}\n")
            out.flush()
            last = line


def _manual(status: JsonObject) -> dict[str, JsonValue]:
    sync = status.get("sync")
    manual = sync.get("manual_pass") if isinstance(sync, dict) else None
    return manual if isinstance(manual, dict) else {}


def _int(value: JsonValue) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def progress_line(status: JsonObject) -> str:
    """``[#####-----] 3/10 files, 1.2/4.0 MiB`` for the latest manual pass."""
    manual = _manual(status)
    if not manual:
        return ""
    total, done = _int(manual.get("bytes")), _int(manual.get("bytes_done"))
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    sync = status.get("sync")
    offline = isinstance(sync, dict) and sync.get("online") is False
    return (
        f"[{bar}] {_int(manual.get('done'))}/{_int(manual.get('files'))} files, "
        f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB"
        + ("  (cloud offline, retrying)" if offline else "")
    )


def summarize(status: JsonObject, *, waited: bool) -> str:
    """One line saying what the manual pass did."""
    manual = _manual(status)
    files = _int(manual.get("files"))
    if not waited:
        return f"sync started: {files} files handed to upload workers"
    return (
        f"sync done: {files} files, confirmed {_int(manual.get('confirmed'))}, "
        f"failed {_int(manual.get('failed'))}"
    )

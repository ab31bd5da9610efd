"""``ferry status``: what a running agent is doing, from its local API."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from actors.run_cmd import add_api_argument, find_error

if TYPE_CHECKING:
    import argparse

    from actors.codec import JsonObject, JsonValue

EXIT_UNREACHABLE = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry status``."""
    parser = subparsers.add_parser(
        "status",
        help="show a running agent's collectors, files and disk",
        description="Ask a running agent (ferry run) for its status over its local API.",
    )
    add_api_argument(parser, "the agent's local API (default 127.0.0.1:8085)")
    parser.add_argument("--json", action="store_true", help="print the raw status as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Deferred imports keep `ferry --help` fast.
    import trio

    host, port = args.api
    try:
        status = trio.run(_fetch, host, port)
    except (OSError, BaseExceptionGroup) as exc:
        # trio-asyncio's nurseries wrap the connection error in groups: look inside.
        found = find_error(exc, (OSError,))
        if found is None:
            raise
        print(f"ferry status: no agent answers at {host}:{port} ({found})", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0


async def _fetch(host: str, port: int) -> JsonObject:
    from actors.adapters.aio import open_aio_loop
    from actors.adapters.grpc_local_client import fetch_status

    async with open_aio_loop():
        return await fetch_status(host, port)


def _num(value: JsonValue) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def render(status: JsonObject) -> str:
    """The status as a human-readable report."""
    lines: list[str] = []
    agent = status.get("agent")
    if isinstance(agent, dict):
        lines.append(
            f"agent pid {_num(agent.get('pid')):.0f}  config {agent.get('config')}  "
            f"since {agent.get('started')}"
        )
        if agent.get("config_error"):
            lines.append(f"  config rejected (running the previous one): {agent['config_error']}")
        errors = agent.get("component_errors")
        if isinstance(errors, dict):
            lines.extend(f"  component {name}: {err}" for name, err in errors.items())
    config = status.get("config")
    if isinstance(config, dict) and config.get("source") == "cloud":
        lines += render_cloud_config(config)
    header = (
        f"{'collector':<36} {'hz set':>7} {'hz got':>7} {'captured':>9} {'dropped':>8} "
        f"{'missed':>7} {'errors':>7}"
    )
    lines += ["", header]
    collectors = status.get("collectors")
    for c in collectors if isinstance(collectors, list) else []:
        if not isinstance(c, dict):
            continue
        name = f"{c.get('resource')}/{c.get('method')}" + ("" if c.get("active") else " (removed)")
        lines.append(
            f"{name:<36} {_num(c.get('configured_hz')):>7.2f} {_num(c.get('achieved_hz')):>7.2f} "
            f"{_num(c.get('captured')):>9.0f} {_num(c.get('dropped')):>8.0f} "
            f"{_num(c.get('missed_ticks')):>7.0f} {_num(c.get('errors')):>7.0f}"
        )
        if c.get("last_error"):
            lines.append(f"    last error: {c['last_error']}")
    writer = status.get("writer")
    if isinstance(writer, dict):
        state = "RETRYING after disk errors" if writer.get("retrying") else "ok"
        if writer.get("paused"):
            state = (
                f"PAUSED below min_free_bytes ({_num(writer.get('dropped_paused')):.0f} dropped)"
            )
        lines += [
            "",
            f"writer {state}: {_num(writer.get('records_written')):.0f} records, "
            f"{_num(writer.get('files_finished')):.0f} files finished, "
            f"{_num(writer.get('io_errors')):.0f} disk errors",
        ]
        if writer.get("last_io_error"):
            lines.append(f"    last disk error: {writer['last_io_error']}")
    pending = status.get("pending")
    if isinstance(pending, dict):
        lines.append(
            f"pending sync: {_num(pending.get('files')):.0f} files, "
            f"{_size(_num(pending.get('bytes')))}"
        )
    sync = status.get("sync")
    if isinstance(sync, dict) and sync:
        lines += ["", *render_sync(sync)]
    retention = status.get("retention")
    if isinstance(retention, dict) and retention:
        lines += render_retention(retention)
    disks = status.get("disk")
    for d in disks if isinstance(disks, list) else []:
        if isinstance(d, dict):
            lines.append(
                f"disk {d.get('capture_dir')}: {100 * _num(d.get('used_fraction')):.1f}% used, "
                f"{_size(_num(d.get('free')))} free"
            )
    return "\n".join(lines)


def render_cloud_config(config: JsonObject) -> list[str]:
    """The cloud-config line: what runs, where it came from, what was refused."""
    online = "online" if config.get("online") else f"OFFLINE ({config.get('offline_reason')})"
    running = (
        f"{config.get('applied_revision')} ({config.get('applied_label')})"
        + (" from the cache" if config.get("from_cache") else "")
        if config.get("applied_revision")
        else "none yet"
    )
    lines = [f"  cloud config for part {config.get('part_id')}: {online}; running {running}"]
    if config.get("error"):
        lines.append(f"  cloud config {config.get('rejected_revision')} REFUSED: {config['error']}")
    return lines


def render_sync(sync: JsonObject) -> list[str]:
    """The sync section: mode, reachability, counters and the files being uploaded."""
    if sync.get("error"):
        return [f"sync: {sync['error']}"]
    online = "online" if sync.get("online") else f"OFFLINE ({sync.get('offline_error')})"
    mode = str(sync.get("mode"))
    if not sync.get("exactly_once"):
        mode += ", exactly-once does NOT hold (the cloud has no resumable service)"
    every, soon = _num(sync.get("interval_s")), _num(sync.get("next_pass_in_s"))
    schedule = (
        f"every {every:g} s, next in {soon:.1f} s"
        if sync.get("scheduled")
        else "scheduled sync disabled (manual only)"
    )
    lines = [f"sync to {sync.get('cloud')}: {online}; {mode}; {schedule}"]
    if sync.get("selective_syncer"):
        lines.append(f"  selective syncer: {sync['selective_syncer']}")
    c = sync.get("counters")
    if isinstance(c, dict):
        n = {name: _num(value) for name, value in c.items()}
        lines.append(
            f"  uploaded {n.get('files_uploaded', 0):.0f} files "
            f"({n.get('records_uploaded', 0):.0f} readings, {_size(n.get('bytes_sent', 0))}), "
            f"deleted {n.get('files_deleted', 0):.0f}, failed {n.get('files_failed', 0):.0f}, "
            f"re-sent {_size(n.get('bytes_resent', 0))} after "
            f"{n.get('interruptions', 0):.0f} interruptions"
        )
    files = sync.get("files")
    for f in files if isinstance(files, list) else []:
        if not isinstance(f, dict):
            continue
        line = (
            f"  {f.get('phase'):<10} {f.get('path')}  "
            f"{_size(_num(f.get('bytes_confirmed')))}/{_size(_num(f.get('size')))}"
        )
        if f.get("phase") == "backoff":
            line += (
                f"  attempt {_num(f.get('attempt')):.0f}, "
                f"retry in {_num(f.get('next_attempt_in_s')):.1f} s: {f.get('last_error')}"
            )
        lines.append(line)
    return lines


def render_retention(retention: JsonObject) -> list[str]:
    """What retention deleted, by reason, and its current warning."""
    lines: list[str] = []
    deleted = retention.get("deleted")
    for reason, count in deleted.items() if isinstance(deleted, dict) else []:
        if isinstance(count, dict) and _num(count.get("files")):
            lines.append(
                f"retention deleted ({reason}): {_num(count.get('files')):.0f} files, "
                f"{_num(count.get('readings')):.0f} readings, {_size(_num(count.get('bytes')))}"
            )
    if retention.get("warning"):
        lines.append(f"retention warning: {retention['warning']}")
    if retention.get("last_error"):
        lines.append(f"retention check failed: {retention['last_error']}")
    return lines

"""Parts of the agent's status report (``ferry status``, the local API's ``Status``).

Kept apart from ``actors.agent``, which builds and runs the supervision tree, so
the shape of the report (process facts, per-collector rates, writer counters, disk usage, the
backlog of finished files) stays in one place; ``Agent.status`` assembles them.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from actors.codec import CAPTURE_EXT, SKIPPED_DIRS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from actors.capture import CaptureRuntime
    from actors.codec import JsonObject, JsonValue
    from actors.ports import BlockingRunner, DiskUsage
    from actors.supervisor import Supervisor


def process_status(
    config: Path,
    config_error: str,
    started_wall_ns: int,
    component_errors: Mapping[str, str],
    root: Supervisor,
) -> JsonObject:
    """The process: pid, config file and why its last change was refused, start time, restarts."""
    return {
        "pid": os.getpid(),
        "config": str(config),
        "config_error": config_error,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_wall_ns / 1e9)),
        "component_errors": dict(component_errors),
        "restarts": {cid: s.failures for cid, s in root.stats.items()},
    }


def collectors_status(runtime: CaptureRuntime, now: float) -> list[JsonValue]:
    """One row per collector ever started; ``now`` is Trio time, for the achieved rate."""
    collectors: list[JsonValue] = []
    for key, stats in sorted(runtime.collector_stats.items()):
        cp = runtime.plan.collectors.get(key)
        elapsed = now - stats.started_at if stats.started_at is not None else 0.0
        collectors.append(
            {
                "resource": key[1],
                "api": key[0],
                "method": key[2],
                "active": cp is not None,
                "configured_hz": cp.frequency_hz if cp else 0.0,
                "achieved_hz": stats.captured / elapsed if elapsed > 0 else 0.0,
                "captured": stats.captured,
                "dropped": stats.dropped,
                "missed_ticks": stats.missed_ticks,
                "errors": stats.errors,
                "timeouts": stats.timeouts,
                "filtered": stats.filtered,
                "tick_lateness_p99_ms": stats.lateness.percentile(99) * 1e3,
                "last_error": stats.last_error,
            }
        )
    return collectors


async def disk_status(runner: BlockingRunner, disk: DiskUsage, dirs: list[Path]) -> list[JsonValue]:
    """Usage of the file system under each capture directory."""
    rows: list[JsonValue] = []
    for d in dirs:
        usage = await runner.run(disk.usage, d)
        rows.append(
            {
                "capture_dir": str(d),
                "total": usage.total,
                "used": usage.used,
                "free": usage.free,
                "used_fraction": usage.used_fraction,
            }
        )
    return rows


def writer_status(runtime: CaptureRuntime) -> JsonObject:
    """The writer's and the capture store's counters (zeros before they start)."""
    writer = runtime.writer
    store = runtime.store
    return {
        "records_written": store.stats.records_written if store else 0,
        "files_finished": store.stats.files_finished if store else 0,
        "encode_errors": store.stats.encode_errors if store else 0,
        "io_errors": writer.stats.io_errors if writer else 0,
        "retrying": writer.stats.retrying if writer else False,
        "paused": writer.stats.paused if writer else False,
        "dropped_paused": writer.stats.dropped_paused if writer else 0,
        "last_io_error": writer.stats.last_io_error if writer else "",
        "open_files": [str(p) for p in store.open_files()] if store else [],
    }


def pending_files(dirs: list[Path]) -> tuple[int, int]:
    """Finished capture files and their bytes waiting under ``dirs``."""
    files = total = 0
    for root in dirs:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            for name in filenames:
                if name.endswith(CAPTURE_EXT):
                    files += 1
                    try:
                        total += os.stat(os.path.join(dirpath, name)).st_size
                    except OSError:
                        continue
    return files, total

"""Capture runtime benchmarks: the real actors on the real clock, threads and disk.

1. End to end: collectors with an instant fake component at a high rate, through
   the writer, into finished capture files: readings/s on one core.
2. 100 collectors x 100 Hz: ticks captured, tick lateness p50/p99, CPU share, RSS.

Run: python -m bench.capture [--seconds S] [--fleet-seconds S]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import psutil
import trio

from actors.adapters.clock import PreciseClock, SystemWallClock
from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import ThreadRunner
from actors.capture import CaptureRuntime, CaptureSeams
from actors.components import ResourceName, Tabular
from actors.components._registry import Registry
from actors.histogram import LatencyHistogram
from actors.plan import CapturePlan, CollectorPlan, ComponentPlan
from actors.run_cmd import tune_agent_process

API = "rdk:component:sensor"
READING = {"temperature_c": 21.5, "humidity": 40.0, "pressure_hpa": 1013.2, "ok": True}


class AsyncInstantSensor:
    """Answers at once with the same small reading, through the async ``capture``:
    each method gets its own collector task (the path for components that may block)."""

    def __init__(self, ctx) -> None:
        pass

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    async def capture(self, method, params):
        return Tabular(READING)

    async def aclose(self) -> None:
        pass


class InstantSensor(AsyncInstantSensor):
    """The same, also answering ``capture_nowait``: captured by a cohort per period."""

    def nowait_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    def capture_nowait(self, method, params):
        return Tabular(READING)


def _plan(root: Path, collectors: int, hz: float, model: str) -> CapturePlan:
    comps, cols = {}, {}
    for i in range(collectors):
        resource = ResourceName(API, f"s{i}", model)
        comps[resource.name] = ComponentPlan(resource)
        cp = CollectorPlan(
            resource,
            "Readings",
            hz,
            root,
            queue_size=10_000,
            buffer_bytes=65536,
            max_file_bytes=8 << 20,
        )
        cols[cp.key] = cp
    return CapturePlan(components=comps, collectors=cols, capture_dirs=frozenset({root}))


async def _run(
    root: Path, collectors: int, hz: float, seconds: float, model: str = "instant"
) -> tuple[CaptureRuntime, float, float]:
    registry = Registry()
    registry.register(API, "instant", InstantSensor)
    registry.register(API, "async-instant", AsyncInstantSensor)
    seams = CaptureSeams(
        registry=registry,
        clock=SystemWallClock(),
        runner=ThreadRunner(),
        fs=OsFileSystem(),
        rng=random.Random(0),
    )
    runtime = CaptureRuntime(seams)
    proc = psutil.Process()
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, _plan(root, collectors, hz, model))
        cpu0, t0 = proc.cpu_times(), time.perf_counter()
        await trio.sleep(seconds)
        cpu1, t1 = proc.cpu_times(), time.perf_counter()
        nursery.cancel_scope.cancel()
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return runtime, cpu, t1 - t0


def throughput(root: Path, seconds: float) -> tuple[float, float, float]:
    """Readings/s written end to end, CPU cores used, and the share of ticks missed.

    100 collectors at 1 kHz (100,000 readings/s asked for), captured by one cohort:
    faster ticks are not possible (Trio's timer resolution is about 1 ms).
    """
    runtime, cpu, wall = trio.run(_run, root, 100, 1000.0, seconds, clock=PreciseClock())
    assert runtime.store is not None
    written = runtime.store.stats.records_written
    stats = runtime.collector_stats.values()
    missed = sum(s.missed_ticks for s in stats)
    ticks = sum(s.ticks for s in stats) + missed
    return written / wall, cpu / wall, 100.0 * missed / max(ticks, 1)


def fleet(root: Path, seconds: float, model: str = "instant") -> dict[str, float]:
    """100 collectors at 100 Hz."""
    runtime, cpu, wall = trio.run(_run, root, 100, 100.0, seconds, model, clock=PreciseClock())
    merged = LatencyHistogram()
    captured = 0
    for stats in runtime.collector_stats.values():
        captured += stats.captured
        for i, n in enumerate(stats.lateness.counts):
            merged.counts[i] += n
        merged.total += stats.lateness.total
        merged.max = max(merged.max, stats.lateness.max)
    expected = 100 * 100.0 * wall
    dropped = sum(s.dropped for s in runtime.collector_stats.values())
    return {
        "dropped": float(dropped),
        "ticks_pct": 100.0 * min(captured, expected) / expected,
        "p50_ms": merged.percentile(50) * 1e3,
        "p99_ms": merged.percentile(99) * 1e3,
        "cpu_cores": cpu / wall,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--fleet-seconds", type=float, default=60.0, help="100x100 Hz run length")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    # Over-driven collectors log their drops; the figures below count them instead.
    logging.basicConfig(level=logging.ERROR)
    tune_agent_process()  # what `ferry run` does
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rate, cores, missed = throughput(Path(tmp) / "t", args.seconds)
        rows += [
            ("capture e2e, 100 x 1 kHz -> files", f"{rate:,.0f}", "readings/s", ">= 100,000"),
            ("  CPU used meanwhile", f"{cores:.2f}", "cores", "1 core"),
            ("  ticks missed (CPU-bound)", f"{missed:.1f}", "%", "-"),
        ]
        for label, model in (
            ("cohort (capture_nowait)", "instant"),
            ("own task per method (capture)", "async-instant"),
        ):
            f = fleet(Path(tmp) / model, args.fleet_seconds, model)
            rows += [
                (f"100 x 100 Hz, {label}: ticks", f"{f['ticks_pct']:.2f}", "%", ">= 99.9"),
                ("  readings dropped (writer behind)", f"{f['dropped']:.0f}", "readings", "0"),
                ("  tick lateness p50", f"{f['p50_ms']:.2f}", "ms", "-"),
                ("  tick lateness p99", f"{f['p99_ms']:.2f}", "ms", "<= 2"),
                ("  CPU", f"{f['cpu_cores']:.2f}", "cores", "<= 0.6"),
                ("  RSS (whole process so far)", f"{f['rss_mb']:.0f}", "MB", "<= 80"),
            ]
    print(f"machine: {os.cpu_count()} cores; fleet run {args.fleet_seconds:g} s")
    print(f"{'metric':<44} {'value':>12} {'unit':<11} goal")
    for metric, value, unit, goal in rows:
        print(f"{metric:<44} {value:>12} {unit:<11} {goal}")


if __name__ == "__main__":
    main()

"""Where a simulated world's wall time goes: the checker's and the cloud's calls, timed.

Wraps the simulator's checker, the in-process cloud's ingest calls and the
capture writer with ``perf_counter`` timers, runs one world (``bench.sim``'s),
and prints each one's share of the wall time, call count and mean. Coarse by
design (only synchronous calls can be timed this way; Trio's own scheduling
is what is left over), but it needs no profiler and is reproducible.

Run: python -m bench.sim_breakdown [--hours 6]
"""

from __future__ import annotations

import argparse
import collections
import functools
import time
from typing import Any

import actors.capture_store as capture_store
import cloud.ingest.resumable as resumable
import sim.checker as checker
import sim.cloud as sim_cloud
import sim.trace as trace
from bench.sim import speed

_SPENT: collections.Counter[str] = collections.Counter()
_CALLS: collections.Counter[str] = collections.Counter()

_TIMED = (
    (capture_store.CaptureStore, ("process",)),
    (resumable.ResumableIngest, ("open", "write", "finish", "upload_files")),
    (checker.Checker, ("finished", "removing", "observe", "survived_power_cut")),
    (sim_cloud.SimCloud, ("inventory", "_open")),
    (trace.Trace, ("event",)),
)


def _timed(owner: type, name: str) -> None:
    inner = getattr(owner, name)
    label = f"{owner.__name__}.{name}"

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            _SPENT[label] += time.perf_counter() - start
            _CALLS[label] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    args = parser.parse_args()
    for owner, names in _TIMED:
        for name in names:
            _timed(owner, name)
    started = time.perf_counter()
    report = speed(args.hours)
    wall = time.perf_counter() - started
    print(f"{args.hours:g} h world in {wall:.1f} s ({report.speedup:.0f}x real time)")
    print("  (CaptureStore.process includes Checker.finished: a rename calls it)")
    for label, spent in _SPENT.most_common():
        n = _CALLS[label]
        share, mean_us = 100 * spent / wall, 1e6 * spent / n
        print(f"  {spent:7.2f} s {share:5.1f} % {n:8d} calls {mean_us:8.0f} µs  {label}")


if __name__ == "__main__":
    main()

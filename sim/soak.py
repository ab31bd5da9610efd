"""``make soak``: the long simulation runs the default test suite cannot afford.

1. A sweep of full simulated days (24 h, 10 collectors, every fault) over the
   correct code: any violation fails the soak and prints its replay command.
2. Every planted bug hunted over up to 1,000 seeds: the soak fails if one
   escapes (the checker would have gone blind to it).

``FERRY_SOAK_DAYS`` (default 8) sets the number of days swept; ``FERRY_SOAK_JOBS``
the parallel processes (default: every core).
"""

from __future__ import annotations

import os
import sys
import time

from actors.planted import Bug
from sim.cli import render
from sim.hunts import hunt
from sim.sweep import sweep
from sim.world import SimConfig

HUNT_SEEDS = 1000


def main() -> int:
    """Runs the soak; returns the exit status."""
    days = int(os.environ.get("FERRY_SOAK_DAYS", "8"))
    jobs = int(os.environ.get("FERRY_SOAK_JOBS", str(os.cpu_count() or 1)))
    started = time.perf_counter()
    print(f"soak: {days} simulated days (24 h, 10 collectors, all faults) on {jobs} processes")
    reports = sweep(SimConfig(seed=0, hours=24.0), range(days), jobs=jobs)
    failed = [r for r in reports if not r.ok]
    for r in reports:
        print(
            f"  seed {r.config.seed}: {'ok' if r.ok else 'FAIL'}  hash {r.trace_hash}  "
            f"{r.tally.captured} captured, {r.tally.deleted_by_policy} deleted by policy, "
            f"{r.robot_crashes} robot / {r.cloud_crashes} cloud crashes, {r.speedup:.0f}x"
        )
    for r in failed:
        print(render(r))
    escaped = []
    print(f"planted bugs, each hunted over up to {HUNT_SEEDS} seeds:")
    for bug in Bug:
        result = hunt(bug, range(HUNT_SEEDS))
        if result.caught_by is None:
            escaped.append(bug)
            print(f"  {bug.value}: NOT CAUGHT in {result.runs} seeds")
        else:
            v = result.caught_by.violations[0]
            print(
                f"  {bug.value}: caught by seed {result.caught_by.config.seed} "
                f"(run {result.runs}): guarantee {v.guarantee}"
            )
    print(f"soak took {time.perf_counter() - started:.0f} s")
    return 1 if failed or escaped else 0


if __name__ == "__main__":
    sys.exit(main())

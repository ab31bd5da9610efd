"""Simulator speed (issue 7): simulated seconds per wall second for a robot day with faults.

Runs ``ferry sim`` worlds in this process (``sim.world.run``): 10 collectors
(sensors at 0.2-1 Hz and a camera at 0.1 Hz), every fault kind, seeds 1.. and
prints, per run, the simulated time, the wall time and their ratio, and the
checker's verdict. Goal: a 24 h day runs >= 1,000x faster than real time.

Run: python -m bench.sim [--hours 24] [--runs 1] [--collectors 10]
"""

from __future__ import annotations

import argparse
import os
import time

from bench.common import cpu_model, python_build
from sim.world import SimConfig, SimReport, run


def speed(hours: float, collectors: int = 10, seed: int = 1) -> SimReport:
    """One world with every fault kind; the report has simulated and wall seconds."""
    return run(SimConfig(seed=seed, hours=hours, collectors=collectors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--collectors", type=int, default=10)
    args = parser.parse_args()
    print(f"bench.sim: {cpu_model()}, {os.cpu_count()} cpus; {python_build()}")
    for seed in range(1, args.runs + 1):
        cpu0 = time.process_time()
        report = speed(args.hours, args.collectors, seed)
        cpu = time.process_time() - cpu0
        verdict = "ok" if report.ok else f"{len(report.violations)} VIOLATIONS"
        print(
            f"  seed {seed}: {report.simulated_s / 3600:.2f} h simulated in {report.wall_s:.1f} s"
            f" wall ({cpu:.1f} s CPU) = {report.speedup:.0f}x real time (goal >= 1000x); "
            f"{report.tally.captured} readings captured, {sum(report.faults.values())} faults; "
            f"{verdict}"
        )


if __name__ == "__main__":
    main()

"""Seed sweeps: many runs in parallel processes, each judged on its own.

Each seed runs in a fresh worker process (``spawn``), so one run's state can
never leak into another and a sweep's verdicts equal the single runs'.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
from typing import TYPE_CHECKING

from sim.world import SimConfig, SimReport, run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


def parse_seeds(text: str) -> range:
    """``A:B`` (B exclusive) or one seed.

    Raises:
        ValueError: not ``A:B`` with integers A < B (the message says so).
    """
    start, sep, stop = text.partition(":")
    try:
        a = int(start)
        b = int(stop) if sep else a + 1
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected A:B with integers, e.g. 0:100") from None
    if b <= a:
        raise ValueError(f"--seeds {text!r}: B must be greater than A")
    return range(a, b)


def _run_one(config: SimConfig) -> SimReport:
    return run(config)


def sweep(
    base: SimConfig,
    seeds: Iterable[int],
    *,
    jobs: int = 1,
    stop_on_failure: bool = False,
    on_report: Callable[[SimReport], None] | None = None,
) -> list[SimReport]:
    """Runs ``base`` for every seed on ``jobs`` processes; reports come back in seed order."""
    configs = [dataclasses.replace(base, seed=seed) for seed in seeds]
    reports: list[SimReport] = []
    for report in _reports(configs, jobs):
        reports.append(report)
        if on_report is not None:
            on_report(report)
        if stop_on_failure and not report.ok:
            break
    return sorted(reports, key=lambda r: r.config.seed)


def _reports(configs: list[SimConfig], jobs: int) -> Iterator[SimReport]:
    if jobs <= 1:
        for config in configs:
            yield run(config)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_run_one, config) for config in configs]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

"""Bug hunts: for each planted bug, the kind of run that should catch it, and the sweep.

A hunt runs seed after seed until the checker reports a violation: the seed
that caught the bug. The test suite hunts each bug within a few dozen seeds;
``make soak`` allows the full 1,000. Each hunt's world is as small as the bug
allows (two collectors, only the faults that matter), so a seed costs seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, final

from actors.planted import Bug
from sim.faults import FaultKind
from sim.world import SimConfig, run

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sim.world import SimReport


def _config(bug: Bug, hours: float, *faults: FaultKind) -> SimConfig:
    return SimConfig(
        seed=0, hours=hours, collectors=2, faults=frozenset(faults), planted=frozenset({bug})
    )


HUNTS: dict[Bug, SimConfig] = {
    Bug.DELETE_BEFORE_CONFIRM: _config(Bug.DELETE_BEFORE_CONFIRM, 0.5),
    Bug.IGNORE_COMMITTED_OFFSET: _config(
        Bug.IGNORE_COMMITTED_OFFSET, 1.0, FaultKind.DROP, FaultKind.ROBOT_CRASH
    ),
    Bug.RENAME_BEFORE_FSYNC: _config(Bug.RENAME_BEFORE_FSYNC, 2.0, FaultKind.ROBOT_CRASH),
    Bug.IDENTITY_PER_ATTEMPT: _config(Bug.IDENTITY_PER_ATTEMPT, 1.0, FaultKind.LOST_ACK),
    Bug.BACKOFF_WITHOUT_CAP: _config(Bug.BACKOFF_WITHOUT_CAP, 6.0, FaultKind.PARTITION),
    Bug.UNCOUNTED_RETENTION: _config(
        Bug.UNCOUNTED_RETENTION, 6.0, FaultKind.DISK_FILL, FaultKind.PARTITION
    ),
    Bug.UNSYNCED_DIRS: _config(Bug.UNSYNCED_DIRS, 1.0, FaultKind.ROBOT_CRASH),
    Bug.DROP_ON_ROTATE: _config(Bug.DROP_ON_ROTATE, 0.5),
    Bug.BLIND_FSYNC_RETRY: _config(Bug.BLIND_FSYNC_RETRY, 1.0, FaultKind.FSYNC_ERROR),
}


@final
@dataclass(frozen=True)
class HuntResult:
    """Which seed caught the bug (None: none of the seeds tried), and after how many runs."""

    bug: Bug
    caught_by: SimReport | None
    runs: int


def hunt(bug: Bug, seeds: Iterable[int]) -> HuntResult:
    """Runs the bug's hunt config seed after seed until one run reports a violation."""
    runs = 0
    for seed in seeds:
        runs += 1
        report = run(replace(HUNTS[bug], seed=seed))
        if not report.ok:
            return HuntResult(bug, report, runs)
    return HuntResult(bug, None, runs)

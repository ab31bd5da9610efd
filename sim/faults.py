"""Fault schedules: data drawn from the run's seeded ``random.Random`` (STYLE.md §18).

A schedule is a sorted tuple of frozen ``Fault(at, kind, duration, magnitude)``.
Window faults (partition, flapping, latency, lossy network, disk fill, slow
disk, failing fsyncs, component errors and hangs) last ``duration`` seconds; point faults
(crashes, clock jumps) happen at ``at``, and a crash's ``duration`` is its
downtime. ``magnitude`` is the fault's strength (a probability, a delay, a jump).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    import random
    from collections.abc import Collection


class FaultKind(Enum):
    """Every fault the simulator can inject."""

    PARTITION = "partition"
    """The network is down: every call fails as connection refused."""
    FLAPPING = "flapping"
    """The network goes down and up every few seconds."""
    LATENCY = "latency"
    """Each call takes ``magnitude`` seconds more, each way."""
    DROP = "drop"
    """A request is lost on the way (the cloud never sees it), with probability ``magnitude``."""
    LOST_ACK = "lost-ack"
    """The cloud applied a request but its answer is lost, with probability ``magnitude``."""
    DUPLICATE = "duplicate"
    """A request is delivered twice, with probability ``magnitude``."""
    CLOUD_CRASH = "cloud-crash"
    """The cloud process dies (in-flight answers are lost) and restarts from its store."""
    ROBOT_CRASH = "robot-crash"
    """Power cut: unsynced file tails are torn, the agent dies and restarts after downtime."""
    DISK_FILL = "disk-fill"
    """The robot's disk is (nearly) full; ``magnitude`` >= 0.5 means capture data fills it."""
    SLOW_DISK = "slow-disk"
    """Every file operation takes ``magnitude`` seconds."""
    CLOCK_JUMP = "clock-jump"
    """The wall clock jumps by ``magnitude`` seconds (negative: backwards)."""
    COMPONENT_ERROR = "component-error"
    """Component calls fail with probability ``magnitude``."""
    COMPONENT_HANG = "component-hang"
    """Component calls never answer (the collector's timeout must end them)."""
    FSYNC_ERROR = "fsync-error"
    """A file's fsync fails with ``EIO``, with probability ``magnitude``, and the bytes
    written since its last good fsync are lost, as Linux does after a writeback error.
    Last in this list, so that a seed's draws for the other kinds stay what they were."""


@final
@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault."""

    at: float
    kind: FaultKind
    duration: float
    magnitude: float

    @property
    def end(self) -> float:
        """When a window fault stops (or a crashed process comes back)."""
        return self.at + self.duration

    def describe(self) -> str:
        """One line for the trace and the report."""
        return (
            f"{self.kind.value} at {self.at:.3f}s for {self.duration:.3f}s ({self.magnitude:.4g})"
        )


@final
@dataclass(frozen=True, slots=True)
class _Profile:
    per_hour: float
    mean_duration_s: float
    max_duration_s: float


# How often each fault strikes and how long it lasts: frequent enough that a
# one-hour run meets most of them, long enough to push backoff to its cap.
_PROFILES: dict[FaultKind, _Profile] = {
    FaultKind.PARTITION: _Profile(0.5, 600.0, 6 * 3600.0),
    FaultKind.FLAPPING: _Profile(0.5, 600.0, 1800.0),
    FaultKind.LATENCY: _Profile(0.5, 900.0, 3600.0),
    FaultKind.DROP: _Profile(1.0, 900.0, 3600.0),
    FaultKind.LOST_ACK: _Profile(1.0, 900.0, 3600.0),
    FaultKind.DUPLICATE: _Profile(1.0, 900.0, 3600.0),
    FaultKind.CLOUD_CRASH: _Profile(0.5, 120.0, 1800.0),
    FaultKind.ROBOT_CRASH: _Profile(1.0, 60.0, 900.0),
    FaultKind.DISK_FILL: _Profile(0.3, 1200.0, 3600.0),
    FaultKind.SLOW_DISK: _Profile(0.5, 600.0, 1800.0),
    FaultKind.CLOCK_JUMP: _Profile(0.5, 0.0, 0.0),
    FaultKind.COMPONENT_ERROR: _Profile(0.5, 600.0, 1800.0),
    FaultKind.COMPONENT_HANG: _Profile(0.5, 300.0, 900.0),
    FaultKind.FSYNC_ERROR: _Profile(0.3, 300.0, 1800.0),
}


LONG_OUTAGE_SHARE = 0.2
"""The share of partitions that are long outages (1-6 h) rather than short (mean 10 min)."""


def parse_kinds(text: str) -> frozenset[FaultKind]:
    """``all``, ``none`` or a comma-separated list of fault names.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    text = text.strip()
    if text == "all":
        return frozenset(FaultKind)
    if text in ("", "none"):
        return frozenset()
    known = {kind.value: kind for kind in FaultKind}
    kinds = set()
    for name in text.split(","):
        kind = known.get(name.strip())
        if kind is None:
            raise ValueError(
                f"--faults: unknown fault {name.strip()!r}; known: all, none, {', '.join(known)}"
            )
        kinds.add(kind)
    return frozenset(kinds)


def plan_faults(
    rng: random.Random, seconds: float, kinds: Collection[FaultKind]
) -> tuple[Fault, ...]:
    """A schedule over ``[0, seconds)``: Poisson arrivals per kind, exponential durations."""
    faults: list[Fault] = []
    for kind in FaultKind:  # a fixed order, so the draws repeat for a seed
        if kind not in kinds:
            continue
        profile = _PROFILES[kind]
        rate = profile.per_hour / 3600.0
        at = rng.expovariate(rate)
        while at < seconds:
            duration = 0.0
            if kind is FaultKind.PARTITION and rng.random() < LONG_OUTAGE_SHARE:
                # A robot out of coverage for hours: what drives backoff to its cap.
                duration = rng.uniform(3600.0, profile.max_duration_s)
            elif profile.mean_duration_s:
                duration = min(
                    rng.expovariate(1.0 / profile.mean_duration_s), profile.max_duration_s
                )
                duration = max(duration, 1.0)
            faults.append(Fault(at, kind, duration, _magnitude(rng, kind)))
            at += rng.expovariate(rate)
    faults.sort(key=lambda f: (f.at, f.kind.value))
    return tuple(faults)


def _magnitude(rng: random.Random, kind: FaultKind) -> float:
    match kind:
        case FaultKind.LATENCY:
            return math.exp(rng.uniform(math.log(0.01), math.log(5.0)))
        case FaultKind.DROP | FaultKind.LOST_ACK | FaultKind.DUPLICATE:
            return rng.uniform(0.02, 0.5)
        case FaultKind.SLOW_DISK:
            return math.exp(rng.uniform(math.log(0.001), math.log(2.0)))
        case FaultKind.CLOCK_JUMP:
            sign = -1.0 if rng.random() < 0.5 else 1.0
            return sign * math.exp(rng.uniform(math.log(1.0), math.log(2 * 86400.0)))
        case FaultKind.COMPONENT_ERROR:
            return rng.uniform(0.05, 1.0)
        case FaultKind.FSYNC_ERROR:
            return rng.uniform(0.05, 0.5)
        case FaultKind.DISK_FILL:
            return rng.random()
        case FaultKind.FLAPPING:
            return rng.uniform(1.0, 30.0)  # seconds per up/down phase
        case _:
            return 0.0

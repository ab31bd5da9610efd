"""One simulated run: the real agent and cloud logic under virtual time, faults, and the checker.

``run(SimConfig(seed=7, hours=24))`` builds the world on a temp dir, runs it in
one ``trio.run`` under ``sim.clock.JumpingClock`` (time jumps whenever
every task waits, so a day passes in seconds), and returns a ``SimReport``.

The run has two phases. During the *fault phase* (``hours`` long) the robot
captures while the fault schedule strikes. Then the *heal phase*: faults stop,
crashed processes come back, components stop producing, and the world runs
until every finished file is synced (liveness) or ``heal_hours`` pass. The
checker then judges guarantees 1-6.

Determinism: every random choice comes from ``Random(seed)`` (split into one
stream per part of the world), wall time is ``EPOCH0 + trio.current_time()``
plus clock-jump faults, file I/O runs inline, and Trio's own scheduler is made
deterministic the way Hypothesis does it (``trio._core._run``'s
``_ALLOW_DETERMINISTIC_SCHEDULING`` and its module ``Random`` seeded from the
seed). So a seed gives the same trace hash on every run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from actors.planted import Bug, planting
from sim.checker import Checker, Tally, Violation
from sim.clock import JumpingClock
from sim.cloud import SimCloud
from sim.conditions import Conditions
from sim.disk import Disk
from sim.faults import Fault, FaultKind, plan_faults
from sim.files import FileDropper
from sim.network import SimNetwork
from sim.robot import CHUNK_BYTES, ROBOT_TAG, Production, Robot, robot_config
from sim.trace import Trace

if TYPE_CHECKING:
    from collections.abc import Iterator

EPOCH0_NS = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z: wall time at virtual time 0."""
QUIET_CHECK_S = 60.0
LOCK_NAME = ".ferry.lock"


@final
@dataclass(frozen=True)
class SimConfig:
    """What to simulate; the replay command reproduces it exactly."""

    seed: int
    hours: float = 1.0
    collectors: int = 10
    faults: frozenset[FaultKind] = frozenset(FaultKind)
    planted: frozenset[Bug] = frozenset()
    heal_hours: float = 2.0
    schedule: tuple[Fault, ...] | None = None
    """An explicit fault schedule (property tests); None draws one from the seed."""

    def replay_command(self) -> str:
        """The ``ferry sim`` command line that runs this again."""
        faults = (
            "all"
            if self.faults == frozenset(FaultKind)
            else ",".join(sorted(k.value for k in self.faults)) or "none"
        )
        cmd = (
            f"ferry sim --seed {self.seed} --hours {self.hours:g} "
            f"--collectors {self.collectors} --faults {faults}"
        )
        for bug in sorted(self.planted, key=lambda b: b.value):
            cmd += f" --plant {bug.value}"
        return cmd


@final
@dataclass
class SimReport:
    """The outcome of one run."""

    config: SimConfig
    tally: Tally
    trace_hash: str
    violations: list[Violation]
    events: int
    faults: dict[str, int]
    produced: int
    robot_crashes: int
    cloud_crashes: int
    torn_bytes: int
    agent_errors: list[str]
    simulated_s: float
    wall_s: float
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No guarantee was broken."""
        return not self.violations

    @property
    def speedup(self) -> float:
        """Simulated seconds per wall second."""
        return self.simulated_s / self.wall_s if self.wall_s > 0 else 0.0


@final
class SimWallClock:
    """``WallClock`` driven by Trio's (mock) clock, plus the clock-jump faults."""

    def __init__(self, epoch_ns: int) -> None:
        self._epoch = epoch_ns
        self.offset_ns = 0

    def now_ns(self) -> int:
        return self._epoch + int(trio.current_time() * 1e9) + self.offset_ns

    def jump(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1e9)


def run(config: SimConfig, *, workdir: Path | None = None, log: bool = False) -> SimReport:
    """Runs one simulation to the end and judges it."""
    base = workdir or fast_tmp_dir()
    root = Path(tempfile.mkdtemp(prefix=f"ferry-sim-{config.seed}-", dir=base))
    started = time.perf_counter()
    try:
        with _deterministic_trio(config.seed), _quiet_logs(quiet=not log):
            report = trio.run(
                functools.partial(_main, config, root),
                clock=JumpingClock(),
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.wall_s = time.perf_counter() - started
    return report


async def _main(config: SimConfig, root: Path) -> SimReport:
    rng = random.Random(config.seed)

    def stream() -> random.Random:
        return random.Random(rng.getrandbits(64))

    trace = Trace(trio.current_time)
    conditions = Conditions()
    clock = SimWallClock(EPOCH0_NS)
    # Drawn even when a schedule is given, so the other streams stay the seed's.
    faults = plan_faults(stream(), config.hours * 3600.0, config.faults)
    if config.schedule is not None:
        faults = config.schedule
    (root / "cloud").mkdir()
    capture_dir = root / "robot" / "capture"
    capture_dir.mkdir(parents=True)
    cloud = SimCloud(root / "cloud", clock.now_ns, stream(), trace)
    net = SimNetwork(cloud, conditions, stream(), trace)
    checker = Checker(trace, net, CHUNK_BYTES)
    disk = Disk(root / "robot", stream(), trace, checker, conditions=conditions)
    checker.disk = disk
    production = Production(conditions, stream())
    config_path = root / "robot" / "config.json"
    config_path.write_text(robot_config(capture_dir, config.collectors, stream()))
    robot = Robot(
        config_path=config_path,
        disk=disk,
        net=net,
        conditions=conditions,
        production=production,
        checker=checker,
        trace=trace,
        clock=clock,
        rng=stream(),
        seed=config.seed,
    )
    # Drawn after every other stream, so theirs stay what the seed gave before files.
    dropper = FileDropper(capture_dir, clock, stream(), checker, production, trace)
    retention_log = logging.getLogger("ferry.retention")
    handler = checker.retention_log()
    retention_log.addHandler(handler)
    leftovers: list[str] = []
    try:
        with planting(config.planted):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(robot.run)
                nursery.start_soon(dropper.run)
                weather = Weather(faults, conditions, disk, cloud, robot, clock, trace)
                nursery.start_soon(weather.run)
                await trio.sleep(config.hours * 3600.0)
                weather.calm()
                production.on = False
                trace.event("sim", "heal")
                deadline = trio.current_time() + config.heal_hours * 3600.0
                while trio.current_time() < deadline:
                    await trio.sleep(QUIET_CHECK_S)
                    quiet = not _any_local_file(capture_dir)
                    if quiet and robot.agent is not None:
                        break
                    if not quiet and trio.current_time() >= deadline:
                        leftovers = _local_files(capture_dir)
                nursery.cancel_scope.cancel()
    finally:
        retention_log.removeHandler(handler)
    stored = cloud.inventory()
    untagged = cloud.untagged(ROBOT_TAG)
    cloud.close()
    tally = checker.judge(stored, leftovers)
    checker.tags_kept(untagged, ROBOT_TAG)
    for message in robot.agent_errors:
        checker.violate("agent", message)
    trace.event("sim", f"end captured={tally.captured} delivered={tally.delivered}")
    return SimReport(
        config=config,
        tally=tally,
        trace_hash=trace.hexdigest(),
        violations=checker.violations,
        events=sum(trace.counts.values()),
        faults=dict(weather.counts),
        produced=sum(production.produced.values()),
        robot_crashes=robot.crashes,
        cloud_crashes=cloud.crashes,
        torn_bytes=disk.torn_bytes,
        agent_errors=robot.agent_errors,
        simulated_s=trio.current_time(),
        wall_s=0.0,
        extra={
            "rpc_calls": net.calls,
            "rpc_failed": net.failed_calls,
            "component_errors": production.errors,
            "component_hangs": production.hangs,
            "enospc": disk.enospc,
            "lost_dir_entries": disk.lost_entries,
            "fsync_errors": disk.fsync_errors,
            "fsync_lost_bytes": disk.fsync_lost_bytes,
            "sync_steps": checker.books.steps,
            "files_dropped": dropper.dropped,
        },
    )


@final
class Weather:
    """Applies the fault schedule as virtual time passes."""

    def __init__(
        self,
        faults: tuple[Fault, ...],
        conditions: Conditions,
        disk: Disk,
        cloud: SimCloud,
        robot: Robot,
        clock: SimWallClock,
        trace: Trace,
    ) -> None:
        self._faults = faults
        self._conditions = conditions
        self._disk = disk
        self._cloud = cloud
        self._robot = robot
        self._clock = clock
        self._trace = trace
        self._cloud_down = 0
        self._fills = 0
        self._scope = trio.CancelScope()
        self.counts: dict[str, int] = {}

    async def run(self) -> None:
        """Starts and ends each fault at its time, until ``calm``."""
        with self._scope:
            await self._play()

    async def _play(self) -> None:
        timeline: list[tuple[float, int, int, Fault]] = []
        for i, fault in enumerate(self._faults):
            timeline.append((fault.at, 1, i, fault))
            if fault.kind is not FaultKind.CLOCK_JUMP:
                timeline.append((fault.end, 0, i, fault))
        timeline.sort(key=lambda item: item[:3])
        for at, starting, _, fault in timeline:
            await trio.sleep_until(at)
            if starting:
                self._start(fault)
            else:
                self._end(fault)

    def _start(self, fault: Fault) -> None:
        self._trace.event("fault", fault.describe())
        self.counts[fault.kind.value] = self.counts.get(fault.kind.value, 0) + 1
        match fault.kind:
            case FaultKind.CLOUD_CRASH:
                self._cloud_down += 1
                self._cloud.crash()
            case FaultKind.ROBOT_CRASH:
                self._robot.crash(fault.duration)
            case FaultKind.CLOCK_JUMP:
                self._clock.jump(fault.magnitude)
            case FaultKind.DISK_FILL:
                self._fills += 1
                self._conditions.open(fault)
                self._disk.fill(fault)
            case _:
                self._conditions.open(fault)

    def _end(self, fault: Fault) -> None:
        match fault.kind:
            case FaultKind.CLOUD_CRASH:
                self._cloud_down -= 1
                if not self._cloud_down:
                    self._cloud.restart()
            case FaultKind.ROBOT_CRASH:
                pass  # the robot counts its own downtime
            case FaultKind.DISK_FILL:
                self._fills -= 1
                self._conditions.close(fault)
                if not self._fills:
                    self._disk.unfill()
            case _:
                self._conditions.close(fault)

    def calm(self) -> None:
        """The heal phase: the schedule stops, every window closes and every process is up."""
        self._scope.cancel()
        self._conditions.clear()
        if self._fills:
            self._fills = 0
            self._disk.unfill()
        self._cloud_down = 0
        self._cloud.restart()
        self._robot.revive()


def _any_local_file(capture_dir: Path) -> bool:
    """Whether a file is still on the robot under the capture dir; stops at the first
    (the heal phase asks every minute, and a backlog can be thousands of files)."""
    for _dirpath, _dirs, files in os.walk(capture_dir):
        if any(name != LOCK_NAME for name in files):
            return True
    return False


def _local_files(capture_dir: Path) -> list[str]:
    """Files still on the robot under the capture dir (failed/ included), relative."""
    found = []
    for dirpath, _dirs, files in os.walk(capture_dir):
        for name in files:
            if name != LOCK_NAME:
                found.append(os.path.relpath(os.path.join(dirpath, name), capture_dir))
    return sorted(found)


def fast_tmp_dir() -> Path | None:
    """A RAM-backed temp dir when there is one: fsync is free there, and the sim fsyncs a lot."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


@contextlib.contextmanager
def _deterministic_trio(seed: int) -> Iterator[None]:
    """Makes Trio's scheduler order a function of ``seed`` (as under Hypothesis)."""
    run_module = trio._core._run
    saved = run_module._ALLOW_DETERMINISTIC_SCHEDULING, run_module._r.getstate()
    run_module._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    run_module._r.seed(seed)
    try:
        yield
    finally:
        run_module._ALLOW_DETERMINISTIC_SCHEDULING = saved[0]  # type: ignore[misc]
        run_module._r.setstate(saved[1])


@contextlib.contextmanager
def _quiet_logs(*, quiet: bool) -> Iterator[None]:
    """Keeps the agent's log lines off stderr (the summary is the output) unless asked."""
    logger = logging.getLogger("ferry")
    if not quiet:
        yield
        return
    saved = logger.propagate
    null = logging.NullHandler()
    logger.addHandler(null)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(null)
        logger.propagate = saved

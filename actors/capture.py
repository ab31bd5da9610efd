"""The capture runtime: the writer and one supervised collector per planned method.

``apply(plan)`` reconfigures in place: collectors whose plan (or whose
component) is unchanged keep running; the others are stopped and started again.
Readings already in the writer's mailbox are written whatever happens to their
collector, so a reconfigure loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.capture_sink import CaptureSink
from actors.capture_store import CaptureStore
from actors.cohort import Cohort, CohortMember
from actors.collector import Collector, CollectorSettings, CollectorStats, default_timeout
from actors.components import ComponentConfigError, ComponentContext, NowaitCapture, Tabular
from actors.messages import InflightGauge, RotateRequest, WriterMsg
from actors.plan import CapturePlan
from actors.supervisor import ChildSpec, Supervisor
from actors.writer import Writer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from actors.codec import JsonValue
    from actors.components import Component
    from actors.components._registry import Registry
    from actors.messages import CaptureMsg, StreamKey
    from actors.plan import CollectorPlan, ComponentPlan
    from actors.ports import BlockingRunner, FileSystem, WallClock

LOGGER = logging.getLogger("ferry.capture")

# A safety bound on the shared mailbox; the real bound is each collector's gauge.
MAILBOX_BOUND = 100_000


@final
@dataclass
class _Running:
    component: Component
    plan: ComponentPlan


@final
@dataclass
class CaptureSeams:
    """The injected world: the same runtime runs on a robot and in the simulator."""

    registry: Registry
    clock: WallClock
    runner: BlockingRunner
    fs: FileSystem
    rng: random.Random
    seed: int = 0
    on_finished: Callable[[list[Path]], None] | None = None
    on_record: Callable[[CaptureMsg], None] | None = None
    """Hears each reading the writer has put in a file (``CaptureStore``): the simulator's
    checker, which then expects to find it captured."""
    component_errors: dict[str, str] = field(default_factory=dict)


@final
class CaptureRuntime:
    """Runs capture for a plan, and follows new plans without a restart.

    Example::

        runtime = CaptureRuntime(seams)
        await nursery.start(runtime.run, plan)
        await runtime.apply(new_plan)
    """

    def __init__(self, seams: CaptureSeams) -> None:
        self._seams = seams
        self._plan = CapturePlan()
        self._components: dict[str, _Running] = {}
        self._gauges: dict[StreamKey, InflightGauge] = {}
        self._cohorts: dict[float, Cohort] = {}
        self._in_cohort: dict[StreamKey, float] = {}
        self.collector_stats: dict[StreamKey, CollectorStats] = {}
        self._lock = trio.Lock()
        self._outbox: trio.MemorySendChannel[WriterMsg] | None = None
        self._collectors: Supervisor | None = None
        self.writer: Writer | None = None
        self.store: CaptureStore | None = None

    @property
    def plan(self) -> CapturePlan:
        """The plan being run."""
        return self._plan

    async def run(
        self, plan: CapturePlan, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Starts the writer, then the collectors of ``plan``; runs until cancelled."""
        seams = self._seams
        send, receive = trio.open_memory_channel[WriterMsg](MAILBOX_BOUND)
        self.store = CaptureStore(
            seams.fs, fsync_interval_s=plan.fsync_interval_s, on_record=seams.on_record
        )
        self.writer = Writer(
            receive, self.store, seams.runner, seams.clock, seams.rng, on_finished=seams.on_finished
        )
        self._collectors = Supervisor("collectors", rng=seams.rng, intensity=1000, period=60.0)
        root = Supervisor("capture", rng=seams.rng, intensity=3, period=60.0)
        self._outbox = send
        try:
            # A plain ``with``: an async channel close checkpoints, and a Cancelled
            # raised there would hide the error that is ending the nursery.
            with send:
                async with trio.open_nursery() as nursery:
                    await nursery.start(
                        root.run,
                        [
                            ChildSpec("writer", self.writer.run),
                            ChildSpec("collectors", self._collectors.run),
                        ],
                    )
                    await self.apply(plan)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await self._close_components(list(self._components))
        raise AssertionError("unreachable")  # pragma: no cover

    async def apply(self, plan: CapturePlan) -> None:
        """Reconfigures to ``plan``: restarts only what changed."""
        async with self._lock:
            old = self._plan
            changed_components = {
                name for name, cplan in old.components.items() if plan.components.get(name) != cplan
            }
            stop = [
                key
                for key, cp in old.collectors.items()
                if plan.collectors.get(key) != cp or cp.resource.name in changed_components
            ]
            for key in stop:
                await self._stop_collector(key)
            await self._close_components(sorted(changed_components))
            for name, cplan in plan.components.items():
                if name not in self._components:
                    await self._create_component(cplan)
            self._plan = plan
            for key, cp in plan.collectors.items():
                if (
                    key in stop
                    or key not in old.collectors
                    or cp.resource.name in changed_components
                ):
                    await self._start_collector(cp)
            LOGGER.info(
                "capture plan applied: %d components, %d collectors (%d restarted)",
                len(plan.components),
                len(plan.collectors),
                len(stop),
            )

    async def rotate(self, keys: frozenset[StreamKey] | None = None) -> None:
        """Finishes open tabular files and returns once they are durable ``.capture`` files."""
        if self._outbox is None:
            return
        done = trio.Event()
        await self._outbox.send(RotateRequest(done, keys))
        await done.wait()

    async def read_sensor(self, name: str) -> Mapping[str, JsonValue]:
        """The ``Readings`` of a running component (the selective syncer asks this).

        Raises:
            KeyError: no component ``name`` is running.
            TypeError: its Readings are not tabular.
        """
        running = self._components[name]
        captured = await running.component.capture("Readings", {})
        if not isinstance(captured, Tabular):
            raise TypeError(f"{name}: Readings returned binary data")
        return captured.data

    async def _create_component(self, cplan: ComponentPlan) -> None:
        seams = self._seams
        resource = cplan.resource
        ctx = ComponentContext(
            resource=resource,
            attributes=cplan.attributes,
            rng=random.Random(f"{seams.seed}:{resource.api}:{resource.name}"),
            clock=seams.clock,
            depends_on=cplan.depends_on,
            runner=seams.runner,
        )
        try:
            component = seams.registry.create(ctx)
        except ComponentConfigError as exc:
            seams.component_errors[resource.name] = str(exc)
            LOGGER.error("component %s (%s) not started: %s", resource.name, resource.model, exc)
            return
        seams.component_errors.pop(resource.name, None)
        self._components[resource.name] = _Running(component, cplan)

    async def _close_components(self, names: list[str]) -> None:
        for name in names:
            running = self._components.pop(name, None)
            if running is None:
                continue
            try:
                await running.component.aclose()
            except Exception as exc:
                LOGGER.warning("component %s did not close cleanly: %s", name, exc)

    async def _start_collector(self, cp: CollectorPlan) -> None:
        running = self._components.get(cp.resource.name)
        if running is None:
            return  # its component failed to start: reported in status
        if cp.method not in running.component.capture_methods():
            error = f"component has no capture method {cp.method!r}"
            self._seams.component_errors[f"{cp.resource.name}/{cp.method}"] = error
            LOGGER.error("%s/%s not started: %s", cp.resource.name, cp.method, error)
            return
        gauge = self._gauges.setdefault(cp.key, InflightGauge(cp.queue_size))
        gauge.capacity = cp.queue_size
        stats = self.collector_stats.setdefault(cp.key, CollectorStats())
        params: dict[str, JsonValue] = dict(cp.params)
        component = running.component
        if isinstance(component, NowaitCapture) and cp.method in component.nowait_methods():
            assert self._outbox is not None
            sink = CaptureSink(cp.stream(), cp.method, self._outbox, gauge, stats)
            cohort = await self._cohort(cp.frequency_hz)
            cohort.add(cp.key, CohortMember(cp.method, params, component.capture_nowait, sink))
            self._in_cohort[cp.key] = cp.frequency_hz
            return
        settings = CollectorSettings(
            stream=cp.stream(),
            method=cp.method,
            frequency_hz=cp.frequency_hz,
            params=params,
            timeout_s=cp.timeout_s or default_timeout(cp.frequency_hz),
        )
        assert self._outbox is not None
        collector = Collector(
            settings, running.component, self._outbox, gauge, stats, self._seams.clock
        )
        # A stop waits for the capture in flight, which its timeout bounds.
        spec = ChildSpec(_child_id(cp.key), collector.run, shutdown=settings.timeout_s + 1.0)
        await self._require_collectors().start_child(spec)

    async def _cohort(self, frequency_hz: float) -> Cohort:
        """The cohort of ``frequency_hz``, started on first use."""
        cohort = self._cohorts.get(frequency_hz)
        if cohort is None:
            assert self._outbox is not None
            cohort = Cohort(frequency_hz, self._seams.clock, self._outbox)
            self._cohorts[frequency_hz] = cohort
            await self._require_collectors().start_child(
                ChildSpec(_cohort_id(frequency_hz), cohort.run)
            )
        return cohort

    async def _stop_collector(self, key: StreamKey) -> None:
        frequency = self._in_cohort.pop(key, None)
        if frequency is None:
            await self._require_collectors().terminate_child(_child_id(key))
            return
        cohort = self._cohorts[frequency]
        cohort.remove(key)
        if not cohort.members:
            del self._cohorts[frequency]
            await self._require_collectors().terminate_child(_cohort_id(frequency))

    def _require_collectors(self) -> Supervisor:
        if self._collectors is None:
            raise RuntimeError("capture runtime is not running")
        return self._collectors


def _child_id(key: StreamKey) -> str:
    return "/".join(key)


def _cohort_id(frequency_hz: float) -> str:
    return f"cohort@{frequency_hz!r}Hz"

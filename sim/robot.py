"""The simulated robot: its components, its config, and the life of its agent process.

The components are plain ``Component`` implementations registered as model
``sim``: a sensor whose readings carry ``{"src": name, "seq": n}`` and a
camera whose images start with ``name#n``, so every reading has a key the
checker can find in capture files and in the cloud. Their sequence numbers
live outside the agent, so they keep counting across crashes.

``Robot.run`` starts the real ``Agent`` on the simulated disk, network and
clock; ``crash`` cuts the power (torn tails, dead incarnation) and the next
incarnation starts after the downtime, recovering its ``.prog`` files.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.agent import Agent, AgentOptions
from actors.capture import CaptureSeams
from actors.components import Binary, SkipReading, Tabular, default_registry
from actors.config_plan import load_plan
from actors.sync.actor import Links
from sim.disk import Incarnation, RobotCrashed, SimDiskUsage, SimFileSystem, SimRunner
from sim.faults import FaultKind

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

    from actors.codec import JsonValue
    from actors.components import Captured, ComponentContext
    from actors.ports import Confirmation, SyncFile, WallClock
    from actors.sync.plan import SyncPlan
    from sim.checker import Checker
    from sim.conditions import Conditions
    from sim.disk import Disk
    from sim.network import SimNetwork
    from sim.trace import Trace

LOGGER = logging.getLogger("ferry.sim")

SENSOR_API = "rdk:component:sensor"
CAMERA_API = "rdk:component:camera"
CAMERA_HZ = 0.1
IMAGE_BYTES = (4 * 1024, 12 * 1024)
"""Each image's size is drawn from this range: a file under one chunk goes in an
``UploadFiles`` batch, a larger one the resumable way, so both paths meet the faults."""
CHUNK_BYTES = 8192
ROBOT_TAG = "sim-robot"
"""The data manager's tag: every reading and file the robot syncs must reach the cloud with it
(capture files carry it in their header, arbitrary files in their upload's metadata)."""


@final
class Production:
    """What the simulated components produce: sequence numbers per component, and the switch."""

    def __init__(self, conditions: Conditions, rng: random.Random) -> None:
        self.conditions = conditions
        self.rng = rng
        self.on = True
        self.produced: Counter[str] = Counter()
        self.errors = 0
        self.hangs = 0

    async def next_seq(self, name: str) -> int:
        """The next reading's number, after whatever component fault is on (hangs included)."""
        if self.conditions.get(FaultKind.COMPONENT_HANG) is not None:
            self.hangs += 1
            await trio.sleep_forever()
        return self.next_seq_nowait(name)

    def next_seq_nowait(self, name: str) -> int:
        """The next reading's number for a component that never blocks (errors, no hangs)."""
        error = self.conditions.get(FaultKind.COMPONENT_ERROR)
        if error is not None and self.rng.random() < error.magnitude:
            self.errors += 1
            raise RuntimeError("simulated component error")
        if not self.on:
            raise SkipReading
        self.produced[name] += 1
        return self.produced[name]


class _SimComponent:
    """What the simulated components share: their name, ``Production`` and own RNG."""

    def __init__(self, ctx: ComponentContext, production: Production) -> None:
        self._name = ctx.resource.name
        self._production = production
        self._rng = ctx.rng

    def _reading(self, seq: int) -> Tabular:
        return Tabular({"src": self._name, "seq": seq, "value": round(self._rng.random(), 6)})

    async def aclose(self) -> None:
        return None


@final
class SimSensor(_SimComponent):
    """``rdk:component:sensor`` model ``sim``: keyed readings from ``Production``.

    A sensor may hang (a component-hang fault), so each capture has its own task
    and timeout; see ``SimQuickSensor`` for the kind that answers at once.
    """

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        return self._reading(await self._production.next_seq(self._name))


@final
class SimQuickSensor(_SimComponent):
    """Model ``sim-quick``: a ``NowaitCapture`` sensor (never blocks), captured by a cohort."""

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    def nowait_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    def capture_nowait(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        return self._reading(self._production.next_seq_nowait(self._name))

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        return self.capture_nowait(method, params)


@final
class SimCamera(_SimComponent):
    """``rdk:component:camera`` model ``sim``: images whose first line is their key."""

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"ReadImage"})

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        seq = await self._production.next_seq(self._name)
        head = f"{self._name}#{seq}\n".encode()
        body = self._rng.randbytes(self._rng.randint(*IMAGE_BYTES) - len(head))
        return [Binary(head + body, "image/jpeg")]


def robot_config(capture_dir: Path, collectors: int, rng: random.Random) -> str:
    """The simulated robot's config: ``collectors`` methods (one camera among them if >= 2)."""
    components: list[dict[str, object]] = []
    sensors = collectors - 1 if collectors >= 2 else collectors
    for i in range(sensors):
        hz = rng.choice((0.2, 0.5, 1.0))
        model = "sim" if i % 2 else "sim-quick"
        components.append(_component(f"s{i}", SENSOR_API, model, "Readings", hz))
    if collectors >= 2:
        components.append(_component("cam", CAMERA_API, "sim", "ReadImage", CAMERA_HZ))
    config = {
        "components": components,
        "services": [
            {
                "name": "data_manager",
                "api": "rdk:service:data_manager",
                "attributes": {
                    "capture_dir": str(capture_dir),
                    "tags": [ROBOT_TAG],
                    "sync_interval_mins": 5,
                    "maximum_num_sync_threads": 2,
                    "sync_chunk_size_bytes": CHUNK_BYTES,
                    "maximum_capture_file_size_bytes": 32 * 1024,
                    "maximum_capture_file_age_secs": 300,
                    "capture_fsync_interval_secs": 5,
                    "sync_rpc_timeout_secs": 10,
                    "retention_check_interval_secs": 30,
                    "delete_every_nth_when_disk_full": 5,
                },
            }
        ],
        "cloud": {
            "address": "127.0.0.1:1",
            "part_id": "sim-part",
            "api_key_id": "sim-key",
            "api_key": "sim-secret",
            "insecure": True,
        },
    }
    return json.dumps(config, indent=2)


def _component(name: str, api: str, model: str, method: str, hz: float) -> dict[str, object]:
    return {
        "name": name,
        "api": api,
        "model": model,
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {"capture_methods": [{"method": method, "capture_frequency_hz": hz}]},
            }
        ],
    }


@final
class Robot:
    """The robot's power and its agent process, restarted after every crash."""

    def __init__(
        self,
        *,
        config_path: Path,
        disk: Disk,
        net: SimNetwork,
        conditions: Conditions,
        production: Production,
        checker: Checker,
        trace: Trace,
        clock: WallClock,
        rng: random.Random,
        seed: int,
    ) -> None:
        self._config_path = config_path
        self._disk = disk
        self._net = net
        self._conditions = conditions
        self._production = production
        self._checker = checker
        self._trace = trace
        self._clock = clock
        self._rng = rng
        self._seed = seed
        self._incarnation: Incarnation | None = None
        self._scope: trio.CancelScope | None = None
        self._back_at = 0.0
        self.agent: Agent | None = None
        self.crashes = 0
        self.starts = 0
        self.agent_errors: list[str] = []

    def crash(self, downtime: float) -> None:
        """Power cut now; the agent starts again ``downtime`` seconds later."""
        inc = self._incarnation
        if inc is None or not inc.alive:
            return
        self.crashes += 1
        self._trace.event("robot", f"crash incarnation={inc.number} down={downtime:.3f}")
        inc.alive = False
        self._disk.power_cut()
        self._back_at = trio.current_time() + downtime
        if self._scope is not None:
            self._scope.cancel()

    def revive(self) -> None:
        """Ends any downtime now (the heal phase)."""
        self._back_at = min(self._back_at, trio.current_time())

    async def run(self) -> NoReturn:
        """Runs incarnation after incarnation until cancelled."""
        number = 0
        while True:
            await trio.sleep_until(self._back_at)
            number += 1
            await self._incarnate(Incarnation(number))

    async def _incarnate(self, inc: Incarnation) -> None:
        self._incarnation = inc
        self.starts += 1
        self._trace.event("robot", f"start incarnation={inc.number}")
        agent = Agent(self._options(inc), self._seams(inc))
        self.agent = agent
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    await nursery.start(agent.run)
                    await trio.sleep_forever()
        except* RobotCrashed:
            if inc.alive:
                raise
        except* Exception as group:
            # The agent itself died (a real bug, or its supervisors gave up): note it,
            # and start it again as systemd would.
            message = f"incarnation {inc.number}: agent stopped: {group.exceptions[0]!r}"
            self.agent_errors.append(message)
            self._trace.event("robot", message)
            LOGGER.error("%s", message, exc_info=group)
            self._back_at = trio.current_time() + 5.0
        finally:
            inc.alive = False
            self.agent = None

    def _options(self, inc: Incarnation) -> AgentOptions:
        net = self._net

        @contextlib.asynccontextmanager
        async def connect(_plan: SyncPlan) -> AsyncIterator[Links]:
            yield Links(net.uploader(inc), _NoWholeFile())

        return AgentOptions(
            config_path=self._config_path,
            load_plan=load_plan,
            disk=SimDiskUsage(self._disk),
            sync_connect=connect,
            sync_observe=self._checker.observe,
            serve_api=False,
            aio=False,
            config_poll_s=60.0,
        )

    def _seams(self, inc: Incarnation) -> CaptureSeams:
        registry = default_registry(entry_points=None)
        production = self._production
        registry.register(SENSOR_API, "sim", lambda ctx: SimSensor(ctx, production))
        registry.register(SENSOR_API, "sim-quick", lambda ctx: SimQuickSensor(ctx, production))
        registry.register(CAMERA_API, "sim", lambda ctx: SimCamera(ctx, production))
        return CaptureSeams(
            registry=registry,
            clock=self._clock,
            runner=SimRunner(inc, self._conditions),
            fs=SimFileSystem(self._disk, inc),
            rng=self._rng,
            seed=self._seed,
            on_record=self._checker.accepted,
        )


@final
class _NoWholeFile:
    """The simulated cloud always speaks ``ferry.sync.v1``: Viam's whole-file mode is never used."""

    async def upload(self, file: SyncFile) -> Confirmation:
        raise AssertionError(f"{file.path}: Viam whole-file mode in the simulator")

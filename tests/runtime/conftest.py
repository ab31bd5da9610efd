"""Shared pieces for runtime tests: a controllable component and a disk that can fill up."""

from __future__ import annotations

import errno
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import trio

from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import InlineRunner
from actors.capture import CaptureSeams
from actors.codec import CAPTURE_EXT, iter_records
from actors.components import Binary, ComponentContext, ResourceName, SkipReading, Tabular
from actors.components._registry import Registry
from actors.plan import CapturePlan, CollectorPlan, ComponentPlan

if TYPE_CHECKING:
    from pathlib import Path

SENSOR = "rdk:component:sensor"
CAMERA = "rdk:component:camera"


class TrioWallClock:
    """Wall time driven by Trio's clock (the simulator does the same)."""

    def __init__(self, epoch_ns: int = 1_763_000_000_000_000_000) -> None:
        self._epoch = epoch_ns
        self._t0 = trio.current_time()

    def now_ns(self) -> int:
        return self._epoch + round((trio.current_time() - self._t0) * 1e9)


@dataclass
class Knobs:
    """What a test can make the counting component do."""

    hang: bool = False
    fail: bool = False
    skip: bool = False
    calls: int = 0


class CountingSensor:
    """Returns {"seq": n}; each call increments n, so lost or duplicated readings show."""

    knobs: dict[str, Knobs] = {}  # noqa: RUF012 - per-test registry, reset by the fixture

    def __init__(self, ctx: ComponentContext) -> None:
        self.name = ctx.resource.name
        self.k = CountingSensor.knobs.setdefault(self.name, Knobs())

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"Readings", "ReadImage"})

    async def capture(self, method: str, params):
        self.k.calls += 1
        if self.k.hang:
            await trio.sleep_forever()
        if self.k.fail:
            raise RuntimeError("sensor unplugged")
        if self.k.skip:
            raise SkipReading
        await trio.lowlevel.checkpoint()
        if method == "ReadImage":
            return [Binary(b"\xff\xd8 frame %d" % self.k.calls, "image/jpeg")]
        return Tabular({"seq": self.k.calls, "name": self.name})

    async def aclose(self) -> None:
        pass


class NowaitCountingSensor(CountingSensor):
    """The same sensor answering synchronously: its Readings are captured by a cohort."""

    def nowait_methods(self) -> frozenset[str]:
        return frozenset({"Readings"})

    def capture_nowait(self, method: str, params):
        self.k.calls += 1
        if self.k.fail:
            raise RuntimeError("sensor unplugged")
        if self.k.skip:
            raise SkipReading
        return Tabular({"seq": self.k.calls, "name": self.name})


class FillableFS:
    """The real disk, except that while ``full`` every write or create fails with ENOSPC."""

    def __init__(self) -> None:
        self._os = OsFileSystem()
        self.full = False
        self.failures = 0

    def _check(self) -> None:
        if self.full:
            self.failures += 1
            raise OSError(errno.ENOSPC, "No space left on device")

    def create_new(self, path):
        self._check()
        return _Guarded(self._os.create_new(path), self)

    def open_append(self, path):
        return _Guarded(self._os.open_append(path), self)

    def __getattr__(self, name):
        return getattr(self._os, name)


class _Guarded:
    def __init__(self, inner, fs: FillableFS) -> None:
        self._inner = inner
        self._fs = fs

    def write(self, data):
        self._fs._check()
        return self._inner.write(data)

    def fsync(self):
        self._inner.fsync()

    def close(self):
        self._inner.close()


@dataclass
class World:
    """Seams for a capture runtime under the autojump clock."""

    root: Path
    fs: FillableFS = field(default_factory=FillableFS)
    finished: list[Path] = field(default_factory=list)

    def seams(self) -> CaptureSeams:
        registry = Registry()
        registry.register(SENSOR, "counting", CountingSensor)
        registry.register(CAMERA, "counting", CountingSensor)
        registry.register(SENSOR, "counting-nowait", NowaitCountingSensor)
        return CaptureSeams(
            registry=registry,
            clock=TrioWallClock(),
            runner=InlineRunner(),
            fs=self.fs,
            rng=random.Random(7),
            on_finished=self.finished.extend,
        )

    def plan(self, *collectors: CollectorPlan) -> CapturePlan:
        comps = {c.resource.name: ComponentPlan(c.resource) for c in collectors}
        return CapturePlan(
            components=comps,
            collectors={c.key: c for c in collectors},
            capture_dirs=frozenset({self.root}),
        )

    model: str = "counting"

    def collector(self, name: str, hz: float, method: str = "Readings", **kw) -> CollectorPlan:
        api = CAMERA if method == "ReadImage" else SENSOR
        model = "counting" if method == "ReadImage" else self.model
        return CollectorPlan(ResourceName(api, name, model), method, hz, self.root, **kw)

    def seqs(self, name: str) -> list[int]:
        """Every seq of ``name`` found in finished capture files, in file order."""
        return self.all_seqs().get(name, [])

    def all_seqs(self) -> dict[str, list[int]]:
        """Seqs of every sensor, reading each finished file once."""
        out: dict[str, list[int]] = {}
        for path in sorted(self.root.rglob(f"*{CAPTURE_EXT}")):
            for _, record in iter_records(path):
                if record.struct:
                    reading = record.struct["readings"]
                    out.setdefault(reading["name"], []).append(int(reading["seq"]))
        return out


def fresh_world(root: Path, model: str) -> World:
    """A world on one capture path only, for guarantees that belong to that path."""
    CountingSensor.knobs = {}
    return World(root, model=model)


@pytest.fixture(params=["counting", "counting-nowait"], ids=["own-task", "cohort"])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> World:
    """Every runtime guarantee is checked on both capture paths: a collector task per
    method (components that may block) and a cohort per period (synchronous ones)."""
    CountingSensor.knobs = {}
    return World(tmp_path / "capture", model=request.param)

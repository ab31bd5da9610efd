"""A sync actor on a real temp dir, uploading in-process into the real cloud ingest and store.

The network between them is ``Lossy``: a scripted wrapper around the
``InProcessUploader`` that can drop a request (the cloud never sees it), lose
an answer (the cloud applied it, the robot never heard), or be offline. Time
is Trio's (tests use ``autojump_clock``), so backoffs cost nothing.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import InlineRunner
from actors.config import CloudSettings
from actors.errors import OfflineError, ResumableUnsupported
from actors.ports import Confirmation
from actors.sync.actor import Links, SyncActor, SyncSeams
from actors.sync.plan import SyncPlan
from cloud.ingest.ids import IdSource
from cloud.ingest.resumable import ResumableIngest, ResumableLimits
from cloud.model import Filter, Principal
from cloud.store.sqlite import SqliteStore
from sim.uploader import InProcessUploader
from tests.cli.captures import write_tabular

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from pathlib import Path

    from actors.codec import JsonValue
    from actors.ports import (
        FileIdentity,
        OpenResult,
        SmallFile,
        SmallOutcome,
        SyncFile,
        WriteResult,
    )

PART = "part-1"
PRINCIPAL = Principal("key-1", "org-1", "loc-1")


class WallClock:
    """Real wall time plus an offset a test can move (arbitrary-file ages)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns


@dataclass
class Lossy:
    """The network: ``fate(rpc, call number)`` says ok, drop, lose (the answer), offline or hang."""

    inner: InProcessUploader
    fate: Callable[[str, int], str] = lambda rpc, n: "ok"
    calls: Counter[str] = field(default_factory=Counter)
    chunk_bytes_delivered: int = 0
    unsupported: bool = False

    async def _route(self, rpc: str, call):  # type: ignore[no-untyped-def]
        self.calls[rpc] += 1
        if self.unsupported:
            raise ResumableUnsupported("UNIMPLEMENTED", where=rpc)
        verdict = self.fate(rpc, self.calls[rpc])
        if verdict == "hang":
            await trio.sleep_forever()  # a call that never ends: the worker's bound must end it
        if verdict in ("drop", "offline"):
            await trio.sleep(0.01)
            raise OfflineError(f"{verdict}: connection reset", where=rpc)
        result = await call()
        if verdict == "lose":
            raise OfflineError("answer lost", where=rpc)
        return result

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        return await self._route("open", lambda: self.inner.open(identity, file))

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        async def call() -> WriteResult:
            result = await self.inner.write(upload_id, offset, data)
            if result.accepted:
                self.chunk_bytes_delivered += len(data)
            return result

        return await self._route("write", call)

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        return await self._route("finish", lambda: self.inner.finish(upload_id, sha256))

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        async def call() -> list[SmallOutcome]:
            outcomes = await self.inner.upload_files(files)
            for f, outcome in zip(files, outcomes, strict=True):
                if not isinstance(outcome, str):
                    self.chunk_bytes_delivered += len(f.data)
            return outcomes

        return await self._route("batch", call)


@dataclass
class RecordingWhole:
    """Viam's whole-file mode, recorded (the real adapter is tested against a real server)."""

    uploaded: list[Path] = field(default_factory=list)

    async def upload(self, file: SyncFile) -> Confirmation:
        self.uploaded.append(file.path)
        return Confirmation(file_id=f"whole-{len(self.uploaded)}")


@dataclass
class World:
    """One robot's capture dir, its sync actor, and the cloud it uploads into."""

    root: Path
    capture_dir: Path
    store: SqliteStore
    ingest: ResumableIngest
    net: Lossy
    whole: RecordingWhole
    clock: WallClock
    rng: random.Random
    readings: dict[str, JsonValue] = field(default_factory=dict)
    on_point: Callable[[str, SyncFile], None] | None = None
    rotations: int = 0

    def plan(self, **changes: object) -> SyncPlan:
        cloud = CloudSettings(
            address="127.0.0.1:1",
            host="127.0.0.1",
            port=1,
            part_id=PART,
            api_key_id="key-1",
            api_key="secret",
            tls_ca_file=None,
            insecure=True,
        )
        base: dict[str, object] = {
            "capture_dirs": (self.capture_dir,),
            "cloud": cloud,
            "interval_s": 60.0,
            "threads": 2,
            "chunk_bytes": 256,
        }
        base.update(changes)
        return SyncPlan(**base)  # type: ignore[arg-type]

    def actor(self, plan: SyncPlan | None = None) -> SyncActor:
        @contextlib.asynccontextmanager
        async def connect(_plan: SyncPlan) -> AsyncIterator[Links]:
            yield Links(self.net, self.whole)

        async def rotate() -> None:
            self.rotations += 1

        async def read_sensor(name: str) -> Mapping[str, JsonValue]:
            if name != "syncer":
                raise KeyError(name)
            return self.readings

        def on_point(point: str, file: SyncFile) -> None:
            if self.on_point is not None:
                self.on_point(point, file)

        seams = SyncSeams(
            fs=OsFileSystem(),
            runner=InlineRunner(),
            clock=self.clock,
            rng=self.rng,
            connect=connect,
            rotate=rotate,
            read_sensor=read_sensor,
            on_point=on_point,
        )
        return SyncActor(plan or self.plan(), seams)

    def capture_file(
        self, n: int, *, subdir: str = "rdk_component_sensor/env/Readings", t: int = 0
    ) -> Path:
        directory = self.capture_dir / subdir
        directory.mkdir(parents=True, exist_ok=True)
        readings = [{"readings": {"i": i, "pad": "x" * 30}} for i in range(n)]
        return write_tabular(directory, readings, wall_ns=1_700_000_000_000_000_000 + t)

    def cloud_readings(self) -> int:
        return self.store.count_tabular(PRINCIPAL, Filter())

    def local_files(self) -> list[Path]:
        return sorted(
            p for p in self.capture_dir.rglob("*") if p.is_file() and p.name != ".ferry.lock"
        )


def make_world(tmp_path: Path, seed: int = 0) -> World:
    capture_dir = tmp_path / "capture"
    capture_dir.mkdir()
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    store = SqliteStore(data_dir, wall_ns=time.time_ns)
    spool = data_dir / "spool"
    spool.mkdir()
    rng = random.Random(seed)
    ingest = ResumableIngest(store, IdSource(random.Random(seed + 1)), spool, ResumableLimits())
    net = Lossy(InProcessUploader(ingest, PRINCIPAL))
    return World(tmp_path, capture_dir, store, ingest, net, RecordingWhole(), WallClock(), rng)


@contextlib.asynccontextmanager
async def running(actor: SyncActor) -> AsyncIterator[SyncActor]:
    """Runs ``actor`` for the body of the ``async with``, then cancels it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        yield actor
        nursery.cancel_scope.cancel()

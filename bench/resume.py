"""Bytes re-sent after an interruption mid-file (issue 8 #6): Ferry's resume vs a whole-file retry.

One binary capture file (32 MiB, 1 MiB chunks) is synced by the real ``SyncActor``
(production ``CloudLink`` and ``GrpcUploader``, one worker) to a real ``ferry
cloud serve`` process. While chunk ``k + 1`` is on its way, the server is killed
with SIGKILL; after a short outage it restarts on the same port and data dir,
and the actor's own retry (kicked by a manual sync) finishes the file.

Counted from the outside: every chunk's bytes handed to ``Uploader.write`` over
both attempts (a wrapper around the production uploader; ``actors/`` is not
touched). Ferry's re-sent bytes are that total minus the file's size.

The reference is Viam's whole-file retry at the same interruption point: all
bytes sent before the kill are wasted and the whole file is sent again, so its
re-sent bytes are the bytes sent before the kill (measured here, in this run).

Run: python -m bench.resume [--file-mib 32] [--chunk-mib 1] [--kill-after 16]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from actors.adapters.aio import open_aio_loop
from actors.adapters.clock import SystemWallClock
from actors.adapters.cloud_link import CloudLink
from actors.adapters.grpc_uploader import GrpcUploader
from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import ThreadRunner
from actors.adapters.viam_uploader import ViamUploader
from actors.sync.actor import Links, SyncActor, SyncSeams
from actors.sync.plan import SyncPlan
from bench.cloud import new_key, start_server, stop_server
from bench.common import MIB, free_port
from bench.sync import ORG, Cloud, files_left, write_binaries

if TYPE_CHECKING:
    import subprocess
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from actors.ports import (
        BlockingRunner,
        Confirmation,
        FileIdentity,
        FileSystem,
        OpenResult,
        SmallFile,
        SmallOutcome,
        SyncFile,
        WriteResult,
    )
    from actors.sync.stats import SyncCounters

KILL_DELAY_S = 0.002
"""How long after chunk ``k + 1`` is handed to the uploader the server is killed."""
OUTAGE_S = 0.5
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ResumeResult:
    """Bytes on the wire (chunk payloads) over both attempts, and what was sent before the kill."""

    file_size: int
    chunk: int
    sent_before_kill: int
    sent_total: int
    seconds: float
    counters: SyncCounters

    @property
    def ferry_resent(self) -> int:
        """Bytes Ferry sent more than once."""
        return self.sent_total - self.file_size

    @property
    def whole_file_resent(self) -> int:
        """Bytes a whole-file retry sends again: everything sent before the kill."""
        return self.sent_before_kill


class Server:
    """The ``ferry cloud serve`` process being killed and restarted on one port."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen[str] = start_server(data_dir, port)[0]
        self.killed = trio.Event()

    def kill(self) -> None:
        """SIGKILL: no goodbye, whatever is in flight."""
        self.proc.kill()
        self.killed.set()

    def restart(self) -> None:
        """Waits for the old process to be gone and starts a new one on the same port."""
        self.proc.wait(timeout=30)
        self.proc = start_server(self.data_dir, self.port)[0]


class CountingUploader:
    """The production uploader, counting chunk bytes and arming the kill on chunk ``kill_on``."""

    def __init__(self, server: Server, kill_on: int) -> None:
        self.inner: GrpcUploader | None = None
        self.nursery: trio.Nursery | None = None
        self._server = server
        self._kill_on = kill_on
        self.writes = 0
        self.sent = 0
        self.sent_before_kill = 0

    def _require(self) -> GrpcUploader:
        assert self.inner is not None, "connect() sets the inner uploader"
        return self.inner

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        """Passes through."""
        return await self._require().open(identity, file)

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        """Counts ``data`` as sent, arms the kill on the chosen chunk, and passes through."""
        self.writes += 1
        self.sent += len(data)
        if self.writes == self._kill_on:
            self.sent_before_kill = self.sent
            assert self.nursery is not None
            self.nursery.start_soon(self._kill_soon)
        return await self._require().write(upload_id, offset, data)

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        """Passes through."""
        return await self._require().finish(upload_id, sha256)

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        """Passes through (the benchmark's one file is far too big to batch)."""
        return await self._require().upload_files(files)

    async def _kill_soon(self) -> None:
        await trio.sleep(KILL_DELAY_S)
        self._server.kill()


def counting_connector(
    fs: FileSystem, runner: BlockingRunner, counter: CountingUploader
) -> Callable[[SyncPlan], AbstractAsyncContextManager[Links]]:
    """``grpc_connector``'s links, with the resumable uploader seen through ``counter``."""

    @contextlib.asynccontextmanager
    async def connect(plan: SyncPlan) -> AsyncIterator[Links]:
        assert plan.cloud is not None
        link = CloudLink(plan.cloud, call_timeout_s=plan.rpc_timeout_s)
        whole = ViamUploader(link, part_id=plan.cloud.part_id, fs=fs, runner=runner)
        counter.inner = GrpcUploader(link)
        try:
            yield Links(counter, whole)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                await link.close()

    return connect


async def _restart_after_kill(server: Server, actor: SyncActor) -> None:
    """Once the server is killed: an outage, a restart, and a manual sync to end the backoff."""
    await server.killed.wait()
    await trio.sleep(OUTAGE_S)
    await trio.to_thread.run_sync(server.restart)
    await actor.sync_now()


async def _sync(
    plan: SyncPlan, server: Server, counter: CountingUploader
) -> tuple[float, SyncActor]:
    fs, runner = OsFileSystem(), ThreadRunner()
    seams = SyncSeams(
        fs=fs,
        runner=runner,
        clock=SystemWallClock(),
        rng=random.Random(0),
        connect=counting_connector(fs, runner, counter),
        rotate=_nothing_to_rotate,
    )
    actor = SyncActor(plan, seams)
    async with open_aio_loop(), trio.open_nursery() as nursery:
        counter.nursery = nursery
        await nursery.start(actor.run)
        nursery.start_soon(_restart_after_kill, server, actor)
        t0 = time.perf_counter()
        result = await actor.sync_now(wait=True)
        seconds = time.perf_counter() - t0
        nursery.cancel_scope.cancel()
    if (result.files, result.confirmed) != (1, 1):
        raise RuntimeError(f"the file was not confirmed: {result}")
    return seconds, actor


async def _nothing_to_rotate() -> None:
    """No writer runs here: the file is already finished."""


def measure(root: Path, *, file_mib: int, chunk: int, kill_after: int) -> ResumeResult:
    """Syncs one binary file, killing the server while chunk ``kill_after + 1`` is in flight."""
    caps = root / "caps"
    [blob] = write_binaries(caps, 1, file_mib * MIB)
    data_dir = root / "cloud"
    key = new_key(data_dir)
    server = Server(data_dir, free_port())
    cloud = Cloud(server.port, key, data_dir)
    plan = SyncPlan(
        capture_dirs=(caps,),
        cloud=cloud.settings(),
        sync_disabled=True,
        interval_s=3600.0,
        threads=1,
        chunk_bytes=chunk,
    )
    counter = CountingUploader(server, kill_on=kill_after + 1)
    try:
        seconds, actor = trio.run(_sync, plan, server, counter)
    finally:
        stop_server(server.proc)
    if not server.killed.is_set():
        raise RuntimeError("the upload ended before the interruption point")
    stored = cloud.counts()
    if stored != (0, 1) or files_left(caps):
        raise RuntimeError(f"data check failed: cloud {stored}, {files_left(caps)} files left")
    print(
        f"  check resume: cloud binary items {stored[1]} (org {ORG}); local files left 0; "
        f"actor retries {actor.status.counters.retries}, "
        f"actor-counted re-sent {actor.status.counters.bytes_resent} B"
    )
    return ResumeResult(
        len(blob), chunk, counter.sent_before_kill, counter.sent, seconds, actor.status.counters
    )


def main() -> None:
    """Prints Ferry's re-sent bytes next to a whole-file retry's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file-mib", type=int, default=32)
    parser.add_argument("--chunk-mib", type=int, default=1)
    parser.add_argument("--kill-after", type=int, default=16, help="chunks before the kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-resume-") as tmp:
        r = measure(
            Path(tmp),
            file_mib=args.file_mib,
            chunk=args.chunk_mib * MIB,
            kill_after=args.kill_after,
        )
    print(f"file {r.file_size:,} B, chunks of {r.chunk:,} B; server killed mid-chunk")
    print(f"  sent before the kill:        {r.sent_before_kill:,} B")
    print(f"  sent in all (both attempts): {r.sent_total:,} B in {r.seconds:.1f} s")
    print(f"  Ferry re-sent:               {r.ferry_resent:,} B (goal <= {r.chunk:,})")
    print(f"  whole-file retry re-sends:   {r.whole_file_resent:,} B")


if __name__ == "__main__":
    main()

"""The simulated network between the robot and the cloud, behind the ``Uploader`` port.

Each call crosses the network twice (request, answer), each way taking the
base latency or a latency fault's. On the way it may meet a partition or a
flapping link (connection refused), a down cloud (UNAVAILABLE), a dropped
request (the cloud never sees it), a duplicated delivery (the cloud sees it
twice), a lost answer (the cloud applied it, the robot never hears), or a cloud
crash while the answer is on its way. Every decision is a trace event.

It also keeps the books the checker needs: per file content, the bytes the
robot put on the wire and the interruptions it suffered (guarantee 4), and
which contents the cloud has durably finished (guarantee 3).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, TypeVar, final

import trio

from actors.errors import OfflineError, SyncError
from actors.timers import sleep
from sim.faults import FaultKind

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Sequence

    from actors.ports import (
        Confirmation,
        FileIdentity,
        OpenResult,
        SmallFile,
        SmallOutcome,
        SyncFile,
        WriteResult,
    )
    from sim.cloud import SimCloud
    from sim.conditions import Conditions
    from sim.disk import Incarnation
    from sim.trace import Trace

T = TypeVar("T")

BASE_LATENCY_S = 0.002
"""One way, on a healthy link."""

Content = tuple[int, bytes]
"""A file's content identity: (size, SHA-256). Keys the books, whatever the upload path."""


@final
class SimNetwork:
    """The link, shared by every incarnation of the robot; ``uploader(inc)`` is one's view."""

    def __init__(
        self, cloud: SimCloud, conditions: Conditions, rng: random.Random, trace: Trace
    ) -> None:
        self.cloud = cloud
        self._conditions = conditions
        self._rng = rng
        self._trace = trace
        self.sent: Counter[Content] = Counter()
        self.interruptions: Counter[Content] = Counter()
        self.labels: dict[Content, str] = {}
        """A readable name (the upload path) of each content, for reports."""
        self.finished: set[Content] = set()
        self._uploads: dict[str, Content] = {}
        self.calls = 0
        self.failed_calls = 0

    def uploader(self, incarnation: Incarnation) -> SimUploader:
        """The ``Uploader`` one incarnation of the agent uses."""
        return SimUploader(self, incarnation)

    def down(self) -> str:
        """Why the robot cannot reach the cloud now ('' when it can)."""
        if self._conditions.get(FaultKind.PARTITION) is not None:
            return "connection refused (partition)"
        flap = self._conditions.get(FaultKind.FLAPPING)
        if flap is not None and int((trio.current_time() - flap.at) / flap.magnitude) % 2 == 0:
            return "connection refused (flapping link)"
        if not self.cloud.up:
            return "UNAVAILABLE: the cloud is restarting"
        return ""

    def _chance(self, kind: FaultKind) -> bool:
        fault = self._conditions.get(kind)
        return fault is not None and self._rng.random() < fault.magnitude

    def _latency(self) -> float:
        fault = self._conditions.get(FaultKind.LATENCY)
        return fault.magnitude if fault is not None else BASE_LATENCY_S

    async def call(
        self,
        incarnation: Incarnation,
        rpc: str,
        what: str,
        content: Content | None,
        deliver: Callable[[], Awaitable[T]],
    ) -> T:
        """Carries one call to the cloud and its answer back, meeting whatever faults are on."""
        incarnation.check()
        self.calls += 1
        try:
            return await self._carry(rpc, what, deliver)
        except BaseException:
            self.failed_calls += 1
            if content is not None:
                self.interruptions[content] += 1
            raise

    async def _carry(self, rpc: str, what: str, deliver: Callable[[], Awaitable[T]]) -> T:
        await sleep(self._latency())
        reason = self.down()
        if reason:
            self._trace.event("net", f"refused {rpc} {what}: {reason}")
            raise OfflineError(reason, where=rpc)
        if self._chance(FaultKind.DROP):
            self._trace.event("net", f"drop {rpc} {what}")
            raise OfflineError("connection reset: request lost (simulated)", where=rpc)
        epoch = self.cloud.epoch
        result = await deliver()
        if self._chance(FaultKind.DUPLICATE):
            self._trace.event("net", f"duplicate {rpc} {what}")
            try:
                await deliver()
            except SyncError as exc:
                self._trace.event("net", f"duplicate {rpc} {what} answered {type(exc).__name__}")
        if self._chance(FaultKind.LOST_ACK):
            self._trace.event("net", f"lost-ack {rpc} {what}")
            raise OfflineError("connection reset: answer lost (simulated)", where=rpc)
        await sleep(self._latency())
        if self.cloud.epoch != epoch:
            self._trace.event("net", f"answer lost in cloud crash {rpc} {what}")
            raise OfflineError("connection reset: the cloud crashed", where=rpc)
        self._trace.event("net", f"ok {rpc} {what}")
        return result

    def _remember(self, upload_id: str, content: Content, label: str) -> None:
        self._uploads[upload_id] = content
        self.labels.setdefault(content, label)

    def content_of(self, upload_id: str) -> Content | None:
        """The content an upload carries (known from its OpenUpload)."""
        return self._uploads.get(upload_id)


@final
class SimUploader:
    """The ``Uploader`` port of one incarnation: the simulated link into the real ingest."""

    def __init__(self, net: SimNetwork, incarnation: Incarnation) -> None:
        self._net = net
        self._inc = incarnation

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        net = self._net
        content = (identity.size, identity.sha256)
        what = f"{identity.path} ({identity.size} B)"

        async def deliver() -> OpenResult:
            result = await net.cloud.uploader.open(identity, file)
            net._remember(result.upload_id, content, identity.path)
            if result.finished:
                net.finished.add(content)
            return result

        return await net.call(self._inc, "OpenUpload", what, content, deliver)

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        net = self._net
        content = net.content_of(upload_id)
        if content is not None:
            net.sent[content] += len(data)

        async def deliver() -> WriteResult:
            return await net.cloud.uploader.write(upload_id, offset, data)

        what = f"{upload_id} @{offset}+{len(data)}"
        return await net.call(self._inc, "WriteChunk", what, content, deliver)

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        net = self._net
        contents = [(f.identity.size, f.identity.sha256) for f in files]
        for f, content in zip(files, contents, strict=True):
            net.sent[content] += len(f.data)
            net.labels.setdefault(content, f.identity.path)

        async def deliver() -> list[SmallOutcome]:
            outcomes = await net.cloud.uploader.upload_files(files)
            for outcome, content in zip(outcomes, contents, strict=True):
                if not isinstance(outcome, str):
                    net.finished.add(content)
            return outcomes

        try:
            return await net.call(self._inc, "UploadFiles", f"{len(files)} files", None, deliver)
        except BaseException:
            for content in contents:  # each file's upload was interrupted
                net.interruptions[content] += 1
            raise

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        net = self._net
        content = net.content_of(upload_id)

        async def deliver() -> Confirmation:
            confirmation = await net.cloud.uploader.finish(upload_id, sha256)
            if content is not None:
                net.finished.add(content)
            return confirmation

        return await net.call(self._inc, "FinishUpload", upload_id, content, deliver)

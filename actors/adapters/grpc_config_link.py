"""``ConfigLink`` over Ferry's config service (``ferry.config.v1``), through a ``CloudLink``.

The link does the connection, authentication, deadlines and error mapping; this
module converts messages and drives the watch stream. The stream's messages are
handed to the Trio side one at a time (``trio_as_aio``), so a config is applied
before the next is read. A stream silent for three heartbeat periods counts as
a dead connection (``OfflineError``), so a half-open TCP connection is noticed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast, final

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from actors.adapters.aio import trio_as_aio
from actors.fleet.ports import CloudDoc
from protos.gen.ferry.config import v1 as config_pb

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from grpclib.client import Channel

    from actors.adapters.cloud_link import CloudLink, Metadata
    from actors.fleet.ports import ConfigReport

_SERVICE = "ConfigService"
GET_CONFIG = f"{_SERVICE}/GetConfig"
WATCH_CONFIG = f"{_SERVICE}/WatchConfig"
REPORT_STATUS = f"{_SERVICE}/ReportStatus"
SILENCE_LIMIT_S = 30.0
"""Three of the server's 10 s heartbeats: after this long without a message, the stream is dead."""
WATCH_DEADLINE_S = 900.0
"""The stream's own deadline; the server ends it sooner (600 s) and the robot watches again."""


def _doc(config_json: str, version: config_pb.ConfigVersion | None) -> CloudDoc:
    version = version or config_pb.ConfigVersion()
    return CloudDoc(version.revision, version.label, config_json)


@final
class GrpcConfigLink:
    """The production ``ConfigLink``.

    Example::

        link = GrpcConfigLink(CloudLink(settings))
        doc = await link.get("part-1")
    """

    def __init__(self, link: CloudLink, *, silence_limit_s: float = SILENCE_LIMIT_S) -> None:
        self._link = link
        self._silence_limit_s = silence_limit_s

    async def get(self, part_id: str) -> CloudDoc | None:
        """The part's merged config, or ``None`` when the cloud has none (NOT_FOUND)."""

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> CloudDoc | None:
            request = config_pb.GetConfigRequest(part_id=part_id)
            try:
                reply = await config_pb.ConfigServiceStub(channel).get_config(
                    request, metadata=md, timeout=timeout_s
                )
            except GRPCError as exc:
                if exc.status is Status.NOT_FOUND:
                    return None
                raise
            return _doc(reply.config_json, reply.version)

        return await self._link.call(GET_CONFIG, attempt)

    async def watch(
        self,
        part_id: str,
        known_revision: str,
        on_update: Callable[[CloudDoc | None], Awaitable[None]],
    ) -> None:
        """Streams changes to ``on_update`` (``None`` for a heartbeat) until the server ends it."""
        deliver = trio_as_aio(on_update)
        silence = self._silence_limit_s

        async def attempt(channel: Channel, md: Metadata, _timeout_s: float | None) -> None:
            request = config_pb.WatchConfigRequest(part_id=part_id, known_revision=known_revision)
            stream = cast(
                "AsyncGenerator[config_pb.WatchConfigResponse, None]",
                config_pb.ConfigServiceStub(channel).watch_config(
                    request, metadata=md, timeout=WATCH_DEADLINE_S
                ),
            )
            try:
                while True:
                    async with asyncio.timeout(silence):
                        try:
                            message = await anext(stream)
                        except StopAsyncIteration:
                            return
                    if message.heartbeat:
                        await deliver(None)
                    else:
                        await deliver(_doc(message.config_json, message.version))
            finally:
                await stream.aclose()

        await self._link.call(WATCH_CONFIG, attempt)

    async def report(self, part_id: str, report: ConfigReport) -> None:
        """Sends one ``ReportStatus``."""
        applied = report.applied
        request = config_pb.ReportStatusRequest(
            part_id=part_id,
            applied=config_pb.ConfigVersion(revision=applied.revision, label=applied.label)
            if applied is not None
            else None,
            rejected_revision=report.rejected_revision,
            error=report.error,
            pending_files=report.pending_files,
            pending_bytes=report.pending_bytes,
        )

        async def attempt(channel: Channel, md: Metadata, timeout_s: float | None) -> None:
            await config_pb.ConfigServiceStub(channel).report_status(
                request, metadata=md, timeout=timeout_s
            )

        await self._link.call(REPORT_STATUS, attempt)

    async def close(self) -> None:
        """Closes the channel."""
        await self._link.close()

"""Client of the agent's local API (``ferry status``, ``ferry sync``), over loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from grpclib.client import Channel

from actors.adapters.aio import aio_as_trio
from protos.gen.google.protobuf import Struct
from protos.gen.viam.common import v1 as common
from protos.gen.viam.service.datamanager import v1 as dm

if TYPE_CHECKING:
    from actors.codec import JsonObject


async def _get_status(host: str, port: int) -> JsonObject:
    channel = Channel(host, port)
    try:
        reply = await dm.DataManagerServiceStub(channel).get_status(
            common.GetStatusRequest(name="builtin"), timeout=10.0
        )
    finally:
        channel.close()
    result = reply.result if reply.result is not None else Struct()
    return cast("JsonObject", result.to_dict())


async def fetch_status(host: str, port: int) -> JsonObject:
    """The agent's status (needs the trio-asyncio loop: ``open_aio_loop``).

    Raises:
        OSError: nothing listens there (the agent is not running).
    """
    return await aio_as_trio(_get_status)(host, port)


async def _sync(host: str, port: int, extra: JsonObject) -> None:
    channel = Channel(host, port)
    try:
        await dm.DataManagerServiceStub(channel).sync(
            dm.SyncRequest(name="builtin", extra=Struct.from_dict(dict(extra)))
        )
    finally:
        channel.close()


async def request_sync(host: str, port: int, extra: JsonObject) -> None:
    """Asks the agent for a manual sync (``extra``: ``wait``, ``retry_failed``).

    With ``wait`` it returns when the files pending at the call are confirmed.

    Raises:
        OSError: the agent is not running.
        grpclib.exceptions.GRPCError: the agent could not sync (its message says why).
    """
    await aio_as_trio(_sync)(host, port, extra)

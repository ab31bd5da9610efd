"""The agent's local gRPC API on 127.0.0.1: Viam's ``DataManagerService``.

``GetStatus`` returns the agent's status as a Struct (what ``ferry status``
prints); ``Sync`` asks the sync actor for a pass (``extra``: ``{"wait": true}``
returns once the files pending at the call are confirmed, ``{"retry_failed":
true}`` first re-queues failed/); without a sync actor it answers UNIMPLEMENTED.
Handlers run on the process's trio-asyncio loop and call back into Trio
through ``trio_as_aio``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn, cast, final

import grpclib
import grpclib.exceptions
import trio
from grpclib.server import Server

from actors.adapters.aio import aio_as_trio, trio_as_aio
from protos.gen.google.protobuf import Struct
from protos.gen.viam.common import v1 as common
from protos.gen.viam.service.datamanager import v1 as dm

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from actors.codec import JsonObject

LOGGER = logging.getLogger("ferry.api")


def _bound_port(server: Server) -> int:
    """The port the server listens on (grpclib has no public accessor for it)."""
    inner = cast("asyncio.Server | None", getattr(server, "_server", None))
    sockets = inner.sockets if inner is not None else ()
    return int(sockets[0].getsockname()[1]) if sockets else 0


@final
class _DataManager(dm.DataManagerServiceBase):
    def __init__(
        self,
        status: Callable[[], Awaitable[JsonObject]],
        sync: Callable[[JsonObject], Awaitable[JsonObject]] | None,
    ) -> None:
        self._status = status
        self._sync = sync

    async def get_status(self, message: common.GetStatusRequest) -> common.GetStatusResponse:
        result = await trio_as_aio(self._status)()
        return common.GetStatusResponse(result=Struct.from_dict(dict(result)))

    async def sync(self, message: dm.SyncRequest) -> dm.SyncResponse:
        if self._sync is None:
            raise grpclib.exceptions.GRPCError(
                grpclib.Status.UNIMPLEMENTED, "sync is not running in this agent"
            )
        extra = cast("JsonObject", message.extra.to_dict()) if message.extra is not None else {}
        try:
            await trio_as_aio(self._sync)(extra)
        except RuntimeError as exc:
            raise grpclib.exceptions.GRPCError(
                grpclib.Status.FAILED_PRECONDITION, str(exc)
            ) from None
        return dm.SyncResponse()


@final
class LocalApi:
    """Serves ``DataManagerService`` on a loopback address until cancelled.

    Needs the trio-asyncio loop opened by the agent (``open_aio_loop``).

    Example::

        api = LocalApi("127.0.0.1", 8085, status=agent.status)
        port = await nursery.start(api.run)
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        status: Callable[[], Awaitable[JsonObject]],
        sync: Callable[[JsonObject], Awaitable[JsonObject]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._service = _DataManager(status, sync)

    async def run(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Listens, reports the bound port, and serves until cancelled."""
        server = Server([self._service])
        await aio_as_trio(server.start)(self._host, self._port)
        try:
            port = _bound_port(server) or self._port
            LOGGER.info("local API listening on %s:%d", self._host, port)
            task_status.started(port)
            await trio.sleep_forever()
        finally:
            server.close()
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                await aio_as_trio(server.wait_closed)()
        raise AssertionError("unreachable")  # pragma: no cover

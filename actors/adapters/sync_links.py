"""Opens the production cloud links for the sync actor: one ``CloudLink``, two uploaders.

The sync actor calls ``connect(plan)`` once per generation (at start and after
a reconfigure that changes the cloud or the workers), inside the agent's
trio-asyncio loop; the channel is closed when the generation ends.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import trio

from actors.adapters.cloud_link import CloudLink
from actors.adapters.grpc_uploader import GrpcUploader
from actors.adapters.viam_uploader import ViamUploader
from actors.sync.actor import Links

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager

    from actors.ports import BlockingRunner, FileSystem
    from actors.sync.plan import SyncPlan

CLOSE_TIMEOUT_S = 2.0
"""Closing the channel never holds up a shutdown longer than this."""


def grpc_connector(
    fs: FileSystem, runner: BlockingRunner
) -> Callable[[SyncPlan], AbstractAsyncContextManager[Links]]:
    """The ``SyncSeams.connect`` of a real agent: gRPC to ``plan.cloud``.

    Example::

        seams = SyncSeams(..., connect=grpc_connector(fs, runner), ...)
    """

    @contextlib.asynccontextmanager
    async def connect(plan: SyncPlan) -> AsyncIterator[Links]:
        if plan.cloud is None:
            raise ValueError("no cloud section in the config")
        link = CloudLink(plan.cloud, call_timeout_s=plan.rpc_timeout_s)
        whole = ViamUploader(link, part_id=plan.cloud.part_id, fs=fs, runner=runner)
        try:
            yield Links(GrpcUploader(link), whole)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                await link.close()

    return connect

"""A plain asyncio event loop for the cloud side, whatever trio-asyncio has patched.

Importing ``trio_asyncio`` (the agent's bridge to grpclib) replaces asyncio's
loop policy process-wide: afterwards ``asyncio.run`` and ``asyncio.new_event_loop``
create trio-asyncio's ``SyncTrioEventLoop``, whose ``run_in_executor`` accepts only
its own executors — the cloud's store calls then failed with an AssertionError
(seen when the agent's tests ran before the cloud's in one process). The cloud
server, ``ferry export`` and their tests create their loops here instead: a
``SelectorEventLoop``, built directly, never through the policy.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine

T = TypeVar("T")


def new_asyncio_loop() -> asyncio.AbstractEventLoop:
    """A new standard asyncio loop (not trio-asyncio's)."""
    return asyncio.SelectorEventLoop()


def run_asyncio(main: Coroutine[object, object, T]) -> T:
    """``asyncio.run`` on a standard asyncio loop.

    Example::

        result = run_asyncio(serve())
    """
    with asyncio.Runner(loop_factory=new_asyncio_loop) as runner:
        return runner.run(main)

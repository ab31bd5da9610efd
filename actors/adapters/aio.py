"""The one bridge between Trio and asyncio (grpclib needs asyncio; STYLE.md fact 1).

The agent opens a single trio-asyncio loop for the process (``open_aio_loop``);
adapters call asyncio code with ``aio_as_trio`` and asyncio handlers call back
into Trio with ``trio_as_aio``. No threads are involved. trio-asyncio ships no
type information, so this module gives its three entry points typed signatures.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

import trio_asyncio

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

LOGGER = logging.getLogger("ferry.aio")
P = ParamSpec("P")
T = TypeVar("T")


def aio_as_trio(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wraps an asyncio async function so Trio code can await it."""
    return cast("Callable[P, Awaitable[T]]", trio_asyncio.aio_as_trio(fn))


def trio_as_aio(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wraps a Trio async function so asyncio code (grpclib handlers) can await it."""
    return cast("Callable[P, Awaitable[T]]", trio_asyncio.trio_as_aio(fn))


@contextlib.asynccontextmanager
async def open_aio_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """Opens the process's asyncio loop on top of Trio (once, in the agent's root).

    asyncio reports stray errors (a connection collected unclosed, a callback
    that raised) through the loop's exception handler, which trio-asyncio turns
    into an exception that ends the loop, and with it the agent. Such reports
    are logged instead: they are never worth stopping a robot's capture for.
    """
    async with cast(
        "AbstractAsyncContextManager[asyncio.AbstractEventLoop]", trio_asyncio.open_loop()
    ) as loop:
        loop.set_exception_handler(_log_asyncio_error)
        yield loop


def _log_asyncio_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    del loop
    exc = context.get("exception")
    LOGGER.error(
        "asyncio: %s",
        context.get("message", "error"),
        exc_info=exc if isinstance(exc, BaseException) else None,
    )

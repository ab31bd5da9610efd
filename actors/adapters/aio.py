"""The one bridge between Trio and asyncio (grpclib needs asyncio; STYLE.md fact 1).

The agent opens a single trio-asyncio loop for the process (``open_aio_loop``);
adapters call asyncio code with ``aio_as_trio`` and asyncio handlers call back
into Trio with ``trio_as_aio``. No threads are involved. trio-asyncio ships no
type information, so this module gives its three entry points typed signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

import trio_asyncio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

P = ParamSpec("P")
T = TypeVar("T")


def aio_as_trio(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wraps an asyncio async function so Trio code can await it."""
    return cast("Callable[P, Awaitable[T]]", trio_asyncio.aio_as_trio(fn))


def trio_as_aio(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wraps a Trio async function so asyncio code (grpclib handlers) can await it."""
    return cast("Callable[P, Awaitable[T]]", trio_asyncio.trio_as_aio(fn))


def open_aio_loop() -> AbstractAsyncContextManager[object]:
    """Opens the process's asyncio loop on top of Trio (once, in the agent's root)."""
    return cast("AbstractAsyncContextManager[object]", trio_asyncio.open_loop())

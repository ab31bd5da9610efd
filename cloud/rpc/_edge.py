"""Every call passes here: authentication, the caller's scope, and error mapping.

A grpclib ``RecvRequest`` listener wraps each method: it verifies the bearer
token (except for ``Authenticate``), puts the caller's ``Principal`` in a
context variable the handler reads with ``caller()``, and turns the domain
errors of ``cloud.errors`` into gRPC status codes. Unexpected exceptions become
INTERNAL, logged once with the method and caller, and counted.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar, final

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen

from cloud.errors import CloudError

if TYPE_CHECKING:
    from collections.abc import Callable

    from grpclib.server import Server, Stream

    from cloud.auth import Authenticator
    from cloud.model import Principal

T = TypeVar("T")
LOGGER = logging.getLogger("ferry.cloud")

PUBLIC_METHODS = frozenset({"/proto.rpc.v1.AuthService/Authenticate"})

_CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("ferry_cloud_caller")


def caller() -> Principal:
    """The authenticated caller of the RPC being handled."""
    return _CALLER.get()


def to_grpc(err: CloudError) -> GRPCError:
    """The gRPC error a client sees for a domain error."""
    return GRPCError(Status[err.grpc_code], str(err))


@final
class Edge:
    """Authentication, error mapping and the worker threads for blocking store calls.

    Example::

        edge = Edge(authenticator, workers=8)
        edge.install(server)
        rows = await edge.blocking(store.tabular_by_filter, who, flt, page)
    """

    def __init__(self, authenticator: Authenticator, *, workers: int = 8) -> None:
        self._auth = authenticator
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store")
        self.internal_errors: Counter[str] = Counter()
        self.in_flight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def install(self, server: Server) -> None:
        """Wraps every method of ``server`` (call before it starts)."""
        listen(server, RecvRequest, self._on_request)

    async def blocking(self, fn: Callable[..., T], *args: object) -> T:
        """Runs a blocking call (store, file I/O) on a worker thread."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(ctx.run, fn, *args))

    async def drain(self) -> None:
        """Refuses new calls (UNAVAILABLE) and waits for the running ones to finish.

        Callers bound the wait (``asyncio.timeout``); whatever still runs is then
        cancelled by the server's close.
        """
        self.draining = True
        await self._idle.wait()

    def shutdown(self) -> None:
        """Waits for running store calls, then stops the worker threads."""
        self._executor.shutdown(wait=True)

    async def _on_request(self, event: RecvRequest) -> None:
        inner = event.method_func
        method = event.method_name
        if self.draining:
            raise GRPCError(Status.UNAVAILABLE, "server is shutting down; retry")
        if method in PUBLIC_METHODS:
            event.method_func = functools.partial(self._guarded, inner, method, None)
            return
        header = event.metadata.get("authorization")
        try:
            who = self._auth.verify(header if isinstance(header, str) else None)
        except CloudError as err:
            raise to_grpc(err) from None
        event.method_func = functools.partial(self._guarded, inner, method, who)

    async def _guarded(
        self,
        inner: Callable[[Stream[object, object]], object],
        method: str,
        who: Principal | None,
        stream: Stream[object, object],
    ) -> None:
        if who is not None:
            _CALLER.set(who)
        self.in_flight += 1
        self._idle.clear()
        try:
            await inner(stream)  # type: ignore[misc]  # grpclib types method_func loosely
        except CloudError as err:
            raise to_grpc(err) from None
        except (GRPCError, asyncio.CancelledError):
            raise
        except Exception:
            self.internal_errors[method] += 1
            LOGGER.exception(
                "internal error in %s (caller %s)", method, who.key_id if who else "anonymous"
            )
            raise GRPCError(Status.INTERNAL, "internal server error; see the server log") from None
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

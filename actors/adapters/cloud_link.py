"""The robot's one connection to the cloud: a grpclib channel, a bearer token, error mapping.

Both sync adapters (``grpc_uploader`` for Ferry's resumable service,
``viam_uploader`` for Viam's DataSyncService) share a ``CloudLink``. It owns:

- one grpclib ``Channel`` to ``CloudSettings``: TLS unless ``insecure`` (the CA
  file when given, else the system's CAs), created lazily on the asyncio side
  (grpclib binds to the running loop; STYLE.md fact 1);
- the bearer token from ``proto.rpc.v1.AuthService/Authenticate`` with the API
  key (spec §3.1: entity = key id, type ``api-key``), cached and attached to
  every call; a call answered UNAUTHENTICATED re-authenticates once and retries;
- a deadline on every call, so a black-holed TCP connection fails the call
  instead of wedging it; after any transport failure, timeout or cancellation
  the channel is closed and the next call connects afresh. The deadline is a
  Trio cancel scope, not grpclib's ``timeout=``: grpclib arms an asyncio timer
  per call, and trio-asyncio keeps a cancelled timer until its time comes, so
  a long backlog of quick calls held thousands of dead 60 s timers;
- a fresh connection every ``recycle_after_calls`` calls: h2 remembers the id
  of every closed stream of a connection (up to 65,536), so one long-lived
  connection grew with the backlog. The old connection is closed when its
  last call ends, so no call is cut off;
- the classification of every failure into ``actors.errors`` (STYLE.md §10),
  in ``map_exceptions`` and the status-code frozensets below, and nowhere else.

Every grpclib call runs in an asyncio coroutine wrapped with ``aio_as_trio``, so
callers are Trio code inside ``async with open_aio_loop():``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING, TypeVar, final

import trio
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from h2.exceptions import H2Error

from actors.adapters import h2_repr
from actors.adapters.aio import aio_as_trio
from actors.errors import (
    OfflineError,
    PermanentError,
    ResumableUnsupported,
    SyncError,
    TransientError,
)
from protos.gen.proto.rpc import v1 as rpc_pb

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from typing import TypeAlias

    from actors.config._resolve import CloudSettings

    # Call metadata: the ``authorization`` header, and whatever else a call carries.
    Metadata: TypeAlias = dict[str, str]
    # One attempt of a call: given the channel, the metadata and a timeout in
    # seconds, make the grpclib call (asyncio code) and return its answer. A
    # retry calls it again, so request streams must be built inside it.
    Attempt: TypeAlias = Callable[[Channel, Metadata, float | None], Awaitable[T]]

AUTHENTICATE = "AuthService/Authenticate"
API_KEY_TYPE = "api-key"
DEFAULT_CALL_TIMEOUT_S = 60.0
# The slowest link we still want a large payload to cross before its deadline:
# a call's deadline grows by one second per this many bytes it carries.
DEFAULT_MIN_BYTES_PER_S = 32 * 1024
# Calls per connection before the link opens a new one (see the module docstring).
DEFAULT_RECYCLE_AFTER_CALLS = 4096

# Status codes, classified once (STYLE.md §10); any other code is transient.
OFFLINE_CODES = frozenset({Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED})
PERMANENT_CODES = frozenset({Status.INVALID_ARGUMENT, Status.DATA_LOSS, Status.OUT_OF_RANGE})
UNSUPPORTED_CODES = frozenset({Status.UNIMPLEMENTED})
# Failures of the connection itself (TimeoutError, asyncio's included, is an OSError).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (OSError, StreamTerminatedError, H2Error)


class CredentialsRejected(TransientError):
    """The server answered UNAUTHENTICATED: a bad API key, or a token it no longer accepts."""


@contextlib.contextmanager
def map_exceptions(rpc: str) -> Iterator[None]:
    """Turns grpclib and socket failures inside the block into ``actors.errors``.

    The message names the RPC (``where``) and what the server or the socket said.

    Args:
        rpc: the call, as ``Service/Method``.

    Raises:
        OfflineError: the server cannot be reached, the connection broke, the
            deadline passed, or the server said UNAVAILABLE / DEADLINE_EXCEEDED.
        PermanentError: INVALID_ARGUMENT, DATA_LOSS or OUT_OF_RANGE.
        ResumableUnsupported: UNIMPLEMENTED.
        CredentialsRejected: UNAUTHENTICATED (a ``TransientError``).
        TransientError: any other status code.

    Example::

        with map_exceptions("ResumableUploadService/OpenUpload"):
            reply = await stub.open_upload(request, metadata=md, timeout=60)
    """
    try:
        yield
    except GRPCError as exc:
        raise status_error(rpc, exc.status, exc.message) from exc
    except TRANSPORT_ERRORS as exc:
        what = "no answer before the deadline" if isinstance(exc, TimeoutError) else "transport"
        raise OfflineError(f"{what}: {type(exc).__name__}: {exc}", where=rpc) from exc


def status_error(rpc: str, status: Status, message: str | None) -> SyncError:
    """The ``actors.errors`` instance for a gRPC status answered to ``rpc``."""
    text = f"{status.name}: {message or 'no message'}"
    if status in OFFLINE_CODES:
        return OfflineError(text, where=rpc)
    if status in PERMANENT_CODES:
        return PermanentError(text, where=rpc)
    if status in UNSUPPORTED_CODES:
        return ResumableUnsupported(text, where=rpc)
    if status is Status.UNAUTHENTICATED:
        return CredentialsRejected(text, where=rpc)
    return TransientError(text, where=rpc)


def client_tls_context(settings: CloudSettings) -> ssl.SSLContext | None:
    """The TLS context for ``settings``: ``None`` (plaintext) when ``insecure``.

    HTTP/2 over TLS needs ALPN ``h2``; TLS 1.2 is the oldest version gRPC allows.
    """
    if settings.insecure:
        return None
    cafile = str(settings.tls_ca_file) if settings.tls_ca_file is not None else None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    return ctx


@final
class CloudLink:
    """One authenticated channel to the cloud, shared by the sync adapters.

    Not a context manager: the agent creates it with its config and calls
    ``await link.close()`` (inside the aio loop) when it stops. The counters
    ``channels_opened`` and ``authentications`` are for statistics and tests.

    Args:
        settings: where the cloud is and the API key to use.
        call_timeout_s: the deadline of a call carrying no payload, including
            any authentication it needs; a black-holed connection fails after
            this long.
        min_bytes_per_s: a call carrying ``payload_bytes`` gets that many bytes
            divided by this rate added to its deadline, so a large upload over
            a slow link is not cut off.
        recycle_after_calls: calls on one connection before the next call
            opens a new one.

    Example::

        async with open_aio_loop():
            link = CloudLink(settings, call_timeout_s=30)
            try:
                reply = await link.call("Svc/Method", attempt)
            finally:
                await link.close()
    """

    def __init__(
        self,
        settings: CloudSettings,
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        min_bytes_per_s: float = DEFAULT_MIN_BYTES_PER_S,
        recycle_after_calls: int = DEFAULT_RECYCLE_AFTER_CALLS,
    ) -> None:
        if call_timeout_s <= 0 or min_bytes_per_s <= 0 or recycle_after_calls <= 0:
            raise ValueError(
                "call_timeout_s, min_bytes_per_s and recycle_after_calls must be positive"
            )
        h2_repr.install()
        self.settings = settings
        self._call_timeout_s = call_timeout_s
        self._min_bytes_per_s = min_bytes_per_s
        self._tls = client_tls_context(settings)
        self._recycle_after_calls = recycle_after_calls
        self._channel: Channel | None = None
        self._calls_on_channel = 0
        self._in_flight: dict[Channel, int] = {}
        self._token: str | None = None
        self.channels_opened = 0
        self.authentications = 0

    async def call(self, rpc: str, attempt: Attempt[T], *, payload_bytes: int = 0) -> T:
        """Runs one RPC: authenticated, with a deadline, failures classified.

        Args:
            rpc: the call, as ``Service/Method`` (named in every error).
            attempt: an asyncio coroutine function making the call; it may be
                called twice (once more after a re-authentication).
            payload_bytes: how much the call sends, to scale its deadline.

        Returns:
            What ``attempt`` returned.

        Raises:
            OfflineError, TransientError, PermanentError, ResumableUnsupported:
                see ``map_exceptions``; a ``SyncError`` raised by ``attempt``
                itself (a file that cannot be read) passes through unchanged.
        """
        timeout_s = self._call_timeout_s + max(payload_bytes, 0) / self._min_bytes_per_s
        with trio.move_on_after(timeout_s):
            return await aio_as_trio(self._call_aio)(rpc, attempt)
        # Cancelling the asyncio side dropped the channel: the next call reconnects.
        raise OfflineError(f"no answer before the deadline ({timeout_s:.1f} s)", where=rpc)

    async def close(self) -> None:
        """Closes the channel (a later call would open a new one)."""
        await aio_as_trio(self._close_aio)()

    # ----------------------------------------------------------- asyncio side

    async def _call_aio(self, rpc: str, attempt: Attempt[T]) -> T:
        for retry in (False, True):
            token = await self._token_aio()
            try:
                return await self._attempt_aio(rpc, attempt, {"authorization": f"Bearer {token}"})
            except CredentialsRejected:
                # A token the server no longer accepts (expired, key rotated):
                # forget it, authenticate again, and retry the call once.
                self._token = None
                if retry:
                    raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _token_aio(self) -> str:
        if self._token is not None:
            return self._token
        settings = self.settings
        request = rpc_pb.AuthenticateRequest(
            entity=settings.api_key_id,
            credentials=rpc_pb.Credentials(type=API_KEY_TYPE, payload=settings.api_key),
        )

        async def authenticate(channel: Channel, _md: Metadata, timeout_s: float | None) -> str:
            reply = await rpc_pb.AuthServiceStub(channel).authenticate(request, timeout=timeout_s)
            return reply.access_token

        token = await self._attempt_aio(AUTHENTICATE, authenticate, {})
        self.authentications += 1
        self._token = token
        return token

    async def _attempt_aio(self, rpc: str, attempt: Attempt[T], metadata: Metadata) -> T:
        channel = self._channel_aio()
        self._in_flight[channel] = self._in_flight.get(channel, 0) + 1
        try:
            with map_exceptions(rpc):
                # No grpclib timeout: the deadline is the caller's Trio scope (see above).
                return await attempt(channel, metadata, None)
        except OfflineError:
            self._drop(channel)
            raise
        except asyncio.CancelledError:
            # The caller gave up (its own deadline, or shutdown): the connection
            # may be the reason, and a new one is cheap. Never swallowed.
            self._drop(channel)
            raise
        finally:
            left = self._in_flight.pop(channel) - 1
            if left:
                self._in_flight[channel] = left
            elif channel is not self._channel:
                # Retired, or dropped by another call while this one was connecting
                # on it: close it (again), or grpclib reports it unclosed when collected.
                channel.close()

    def _channel_aio(self) -> Channel:
        if self._channel is not None and self._calls_on_channel >= self._recycle_after_calls:
            retired, self._channel = self._channel, None
            if not self._in_flight.get(retired):
                retired.close()  # else its last call closes it
        if self._channel is None:
            settings = self.settings
            self._channel = Channel(settings.host, settings.port, ssl=self._tls)
            self._calls_on_channel = 0
            self.channels_opened += 1
        self._calls_on_channel += 1
        return self._channel

    def _drop(self, channel: Channel) -> None:
        """Closes ``channel``; the next call opens a new one (unless another call did)."""
        channel.close()
        if self._channel is channel:
            self._channel = None

    async def _close_aio(self) -> None:
        if self._channel is not None:
            self._drop(self._channel)

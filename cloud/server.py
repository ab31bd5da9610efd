"""``ferry cloud serve``: the ingestion and query server, its wiring and its lifecycle.

One process serves Viam's DataSyncService and DataService, Ferry's resumable
upload and fleet config services and the auth service from one embedded store. Shutdown is
graceful: new calls are refused with UNAVAILABLE (clients retry), running calls
get a grace period, then whatever remains is cancelled — an unacknowledged
write is never half-stored, because every store write is one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast, final

from actors.adapters import h2_repr
from cloud.auth import DEFAULT_TOKEN_TTL_S, Authenticator
from cloud.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT, DEFAULT_UPLOAD_IDLE_S
from cloud.fleet.hub import ConfigHub
from cloud.ingest.direct import DirectIngest
from cloud.ingest.expiry import UploadExpiry
from cloud.ingest.ids import IdSource
from cloud.ingest.resumable import ResumableIngest, ResumableLimits
from cloud.rpc._codec import StrictProtoCodec
from cloud.rpc._edge import Edge
from cloud.rpc._h2 import MAX_FRAME_BYTES, LargeFrameServer
from cloud.rpc.auth_service import AuthService
from cloud.rpc.config_service import ConfigService
from cloud.rpc.data_service import DataService
from cloud.rpc.datasync_service import DataSyncService
from cloud.rpc.resumable_service import ResumableUploadService
from cloud.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from grpclib._typing import IServable

LOGGER = logging.getLogger("ferry.cloud")


@dataclass(frozen=True)
class ServerOptions:
    """What ``ferry cloud serve`` is told on its command line."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: int = 8
    token_ttl_s: int = DEFAULT_TOKEN_TTL_S
    limits: ResumableLimits = field(default_factory=ResumableLimits)
    max_stream_upload_bytes: int = 1 << 30
    shutdown_grace_s: float = 10.0
    config_heartbeat_s: float = 10.0
    """A config watch sends a heartbeat after this long without a change."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    """The HTTP/2 frame size clients may send (``cloud/rpc/_h2.py``)."""
    expire_uploads_after_s: float = DEFAULT_UPLOAD_IDLE_S
    """An open upload with no chunk for this long is expired (``ingest/expiry.py``); 0: never."""


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context for HTTP/2 (ALPN ``h2``), TLS 1.2 or newer."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket, so that port 0 can report the port it was given.

    ``proto`` must be ``IPPROTO_TCP``: asyncio sets ``TCP_NODELAY`` only on
    accepted sockets that say so, and without it every small response waited
    ~40 ms for Nagle's algorithm (measured in bench/cloud.py: 45 ms per call).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@final
class CloudServer:
    """The wired server: ``await start()``, then ``await stop()``.

    Example::

        server = CloudServer(ServerOptions(port=0, data_dir=tmp))
        host, port = await server.start()
        ...
        await server.stop()
    """

    def __init__(
        self,
        options: ServerOptions,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        data_dir = options.data_dir.expanduser()
        self.store = SqliteStore(data_dir, wall_ns=wall_ns)
        spool_dir = data_dir / "spool"
        spool_dir.mkdir(mode=0o700, exist_ok=True)
        for leftover in spool_dir.iterdir():  # spools of calls a crash interrupted
            leftover.unlink(missing_ok=True)
        ids = IdSource(rng if rng is not None else random.SystemRandom())
        self.authenticator = Authenticator(self.store, wall_ns=wall_ns, ttl_s=options.token_ttl_s)
        self.edge = Edge(self.authenticator, workers=options.workers)
        self.resumable = ResumableIngest(self.store, ids, spool_dir, options.limits)
        self.config_hub = ConfigHub(self.store, self.edge)
        self._hub_task: asyncio.Task[None] | None = None
        self._expiry = UploadExpiry(self.store, options.expire_uploads_after_s)
        self._expiry_task: asyncio.Task[None] | None = None
        handlers = [
            AuthService(self.edge, self.authenticator),
            DataSyncService(
                self.edge,
                DirectIngest(self.store, ids),
                spool_dir=spool_dir,
                max_upload_bytes=options.max_stream_upload_bytes,
            ),
            ResumableUploadService(self.edge, self.resumable),
            DataService(self.edge, self.store, wall_ns=wall_ns),
            ConfigService(
                self.edge,
                self.store,
                self.store,
                self.config_hub,
                heartbeat_s=options.config_heartbeat_s,
            ),
        ]
        # betterproto2's ServiceBase provides __mapping__ but is not typed as IServable.
        servable = cast("list[IServable]", handlers)
        h2_repr.install()
        self._server = LargeFrameServer(
            servable, codec=StrictProtoCodec(), max_frame_bytes=options.max_frame_bytes
        )
        self.edge.install(self._server)
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Listens; returns the bound ``(host, port)`` (useful with port 0)."""
        opts = self.options
        ctx = None
        if opts.tls_cert is not None and opts.tls_key is not None:
            ctx = tls_context(opts.tls_cert, opts.tls_key)
        sock = listen_socket(opts.host, opts.port)
        await self._server.start(sock=sock, ssl=ctx)
        self._hub_task = asyncio.create_task(self.config_hub.run(), name="config-hub")
        if opts.expire_uploads_after_s > 0:
            self._expiry_task = asyncio.create_task(self._expiry.run(), name="upload-expiry")
        self.address = (opts.host, int(sock.getsockname()[1]))
        return self.address

    async def stop(self) -> None:
        """Graceful shutdown: drain running calls (bounded), close, release the store.

        Config watches are told to end first: they never finish on their own.
        """
        self.config_hub.close()
        if self._hub_task is not None:
            await self._hub_task
        if self._expiry_task is not None:
            self._expiry.stop()  # a pass in progress finishes: the store closes below
            await self._expiry_task
        try:
            async with asyncio.timeout(self.options.shutdown_grace_s):
                await self.edge.drain()
        except TimeoutError:
            LOGGER.warning(
                "shutdown: %d calls still running after %.1f s; cancelling them",
                self.edge.in_flight,
                self.options.shutdown_grace_s,
            )
        self._server.close()
        await self._server.wait_closed()
        self.edge.shutdown()
        self.store.close()

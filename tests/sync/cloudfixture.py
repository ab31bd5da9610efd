"""A real ``CloudServer`` (or any grpclib server) on loopback, for the sync adapters' tests.

The cloud is asyncio and grpclib, with blocking store calls on its own thread
pool; the tests are Trio, talking to it through trio-asyncio. trio-asyncio's
loop refuses foreign executors (``cloud/aio_loop.py``), so the server runs on a
plain asyncio loop in a thread of its own and the test reaches it over TCP,
exactly as a robot reaches the cloud. Starting one takes a few tens of ms::

    with running_cloud(tmp_path) as cloud:
        settings = cloud.settings()            # a fresh API key for org-a/loc-a
        rows = cloud.readings()                # what the store holds
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from grpclib.server import Server

from actors.config._resolve import CloudSettings
from cloud.aio_loop import run_asyncio
from cloud.auth import create_api_key
from cloud.model import Filter, PageRequest, Principal
from cloud.server import CloudServer, ServerOptions, listen_socket

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from grpclib._typing import IServable

    from cloud.model import BinaryRow, TabularRow

ORG, LOC, PART = "org-a", "loc-a", "robot-1-main"
HOST = "127.0.0.1"


class _Background:
    """An asyncio loop in a thread, serving until ``stop()``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, serve: Callable[[], Any], shutdown: Callable[[], Any]) -> Any:
        """Runs ``await serve()`` on the thread's loop; returns its result once it has one."""
        started: Future[Any] = Future()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                started.set_result(await serve())
            except Exception as exc:  # reported to the test by started.result()
                started.set_exception(exc)
                return
            await self._stop.wait()
            await shutdown()

        self._thread = threading.Thread(target=run_asyncio, args=(main(),), name=self._name)
        self._thread.start()
        return started.result(timeout=10)

    def stop(self) -> None:
        """Stops serving and waits for the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), f"{self._name} did not stop"


@dataclass
class ThreadedCloud:
    """A started ``CloudServer``: its address, its store, and keys to reach it."""

    server: CloudServer
    host: str
    port: int

    def key(self, *, org: str = ORG, loc: str = LOC, part: str | None = None) -> tuple[str, str]:
        """A new API key ``(key_id, secret)`` for ``org``/``loc`` (and ``part``)."""
        return create_api_key(
            self.server.store, org_id=org, location_id=loc, part_id=part, wall_ns=time.time_ns
        )

    def settings(
        self,
        *,
        part_id: str = PART,
        org: str = ORG,
        loc: str = LOC,
        key_part: str | None = None,
        key: tuple[str, str] | None = None,
        tls_ca_file: Path | None = None,
        insecure: bool = True,
        port: int | None = None,
    ) -> CloudSettings:
        """``CloudSettings`` for this server with a fresh key (or ``key``)."""
        key_id, secret = key if key is not None else self.key(org=org, loc=loc, part=key_part)
        return cloud_settings(
            port if port is not None else self.port,
            key_id=key_id,
            secret=secret,
            part_id=part_id,
            tls_ca_file=tls_ca_file,
            insecure=insecure,
        )

    def readings(self, *, org: str = ORG, loc: str = LOC) -> Sequence[TabularRow]:
        """Every tabular reading stored for ``org``."""
        who = Principal("test", org, loc)
        return self.server.store.tabular_by_filter(who, Filter(), PageRequest(limit=10_000)).rows

    def binaries(self, *, org: str = ORG, loc: str = LOC) -> Sequence[BinaryRow]:
        """Every binary item stored for ``org``."""
        who = Principal("test", org, loc)
        return self.server.store.binary_by_filter(who, Filter(), PageRequest(limit=10_000)).rows


def cloud_settings(
    port: int,
    *,
    key_id: str = "key",
    secret: str = "secret",
    part_id: str = PART,
    tls_ca_file: Path | None = None,
    insecure: bool = True,
    host: str = HOST,
) -> CloudSettings:
    """``CloudSettings`` for a server on ``host:port``."""
    return CloudSettings(
        address=f"{host}:{port}",
        host=host,
        port=port,
        part_id=part_id,
        api_key_id=key_id,
        api_key=secret,
        tls_ca_file=tls_ca_file,
        insecure=insecure,
    )


@contextlib.contextmanager
def running_cloud(
    tmp_path: Path,
    *,
    port: int = 0,
    wall_ns: Callable[[], int] = time.time_ns,
    allow_internal_errors: bool = False,
    **options: Any,
) -> Iterator[ThreadedCloud]:
    """Runs a ``CloudServer`` on 127.0.0.1 (``port``, default a free one) in a thread.

    Args:
        tmp_path: the data dir is ``tmp_path / "cloud"``.
        port: a fixed port (to bring a server up where something else was).
        wall_ns: the server's wall clock (tokens expire by it).
        allow_internal_errors: unless set, a call that ended in INTERNAL fails the test.
        **options: other ``ServerOptions`` fields (``tls_cert``, ``token_ttl_s``…).
    """
    options.setdefault("shutdown_grace_s", 2.0)
    opts = ServerOptions(host=HOST, port=port, data_dir=tmp_path / "cloud", **options)
    holder: list[CloudServer] = []

    async def serve() -> tuple[str, int]:
        holder.append(CloudServer(opts, wall_ns=wall_ns))
        return await holder[0].start()

    async def shutdown() -> None:
        await holder[0].stop()

    background = _Background("cloud-server")
    host, bound = background.start(serve, shutdown)
    try:
        cloud = ThreadedCloud(holder[0], host, bound)
        yield cloud
    finally:
        background.stop()
    errors = dict(holder[0].edge.internal_errors)
    assert allow_internal_errors or not errors, f"calls ended in INTERNAL: {errors}"


@contextlib.contextmanager
def running_grpc_server(handlers: Callable[[], Sequence[object]]) -> Iterator[int]:
    """Runs a bare grpclib ``Server`` for ``handlers()`` on 127.0.0.1; yields its port.

    ``handlers`` is called on the server's loop (betterproto2 ``ServiceBase``
    instances: a server that lacks a service, or fakes one).
    """
    holder: list[Server] = []

    async def serve() -> int:
        server = Server(cast("list[IServable]", list(handlers())))
        holder.append(server)
        sock = listen_socket(HOST, 0)
        await server.start(sock=sock)
        return int(sock.getsockname()[1])

    async def shutdown() -> None:
        holder[0].close()
        await holder[0].wait_closed()

    background = _Background("grpc-server")
    port = background.start(serve, shutdown)
    try:
        yield port
    finally:
        background.stop()

"""Server lifecycle guarantees: graceful drain, TCP_NODELAY sockets, plain asyncio loops.

- Stopping lets a running call finish and refuses new ones with UNAVAILABLE.
- The listening socket says IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted
  connections (without it every response waited ~40 ms for Nagle).
- The cloud's loops are standard asyncio loops even after trio_asyncio (which
  patches asyncio's loop policy) has been imported.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from cloud.aio_loop import run_asyncio
from cloud.auth import Authenticator
from cloud.server import listen_socket
from tests.cloud.rpc.conftest import authed_metadata, start_server
from tests.cloud.wire import bearer


def test_the_listening_socket_is_tcp_so_accepted_connections_get_nodelay():
    sock = listen_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_cloud_loops_are_plain_asyncio_even_after_trio_asyncio_is_imported():
    import trio_asyncio  # noqa: F401 - importing it is what patches asyncio's policy

    async def offload() -> int:
        with ThreadPoolExecutor(1) as pool:
            return await asyncio.get_running_loop().run_in_executor(pool, lambda: 7)

    assert run_asyncio(offload()) == 7


def test_stop_lets_a_running_call_finish_and_refuses_new_ones(tmp_path, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    authenticate = Authenticator.authenticate

    def slow(self, entity, credential_type, payload):
        if payload == "slow":  # only the call under test waits (then fails: wrong key)
            entered.set()
            release.wait(10)
        return authenticate(self, entity, credential_type, payload)

    monkeypatch.setattr(Authenticator, "authenticate", slow)

    async def scenario() -> None:
        async with start_server(tmp_path, allow_internal_errors=False) as srv:
            await authed_metadata(srv, "org-a", "loc-a")
            key_id = next(iter(_key_ids(srv)))
            running = asyncio.ensure_future(bearer(srv.channel(), key_id, "slow"))
            await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
            stopping = asyncio.ensure_future(srv.server.edge.drain())
            await asyncio.sleep(0.05)
            with pytest.raises(GRPCError) as refused:
                await bearer(srv.channel(), key_id, "anything")
            assert refused.value.status == Status.UNAVAILABLE
            assert not stopping.done()  # still waiting for the running call
            release.set()
            with pytest.raises(GRPCError) as finished:
                await running  # it completed (with its own answer), not cancelled
            assert finished.value.status == Status.UNAUTHENTICATED
            await asyncio.wait_for(stopping, 5)

    run_asyncio(scenario())


def _key_ids(srv) -> list[str]:
    with srv.server.store._db.read() as conn:
        return [row[0] for row in conn.execute("SELECT key_id FROM api_keys")]

"""FaultProxy over real loopback sockets, against a small Trio echo/sink server.

Guarantees checked: bytes pass unchanged both ways; `cut` resets both sides;
`cut_after_up_bytes(n)` delivers exactly n bytes, even to a stalled server;
a black hole forwards nothing in either direction and only new data after it
lifts; `refuse` makes connects fail with ECONNREFUSED and listens again on the
same port; `hold_down` lets the request through and holds the reply, which
`cut` then drops; `delay` adds at least the configured latency, in order; an
unreachable upstream reaches the client as a reset.

Real sockets rule out the autojump clock (it would jump while the kernel moves
bytes), so "nothing arrives" is shown with a short real wait (`QUIET`), and
durations are asserted as lower bounds only.
"""

from __future__ import annotations

import errno
import random
import socket
from typing import TYPE_CHECKING, final

import pytest
import trio

from tests.support.faultproxy import CHUNK, FaultProxy

if TYPE_CHECKING:
    from collections.abc import Callable

# Hang guard for every test; each one normally takes a few tens of milliseconds.
GUARD = 5.0
# How long a test listens to show that nothing arrives.
QUIET = 0.2


@final
class Upstream:
    """A TCP server that records every byte it reads and how each connection ended.

    `echo` sends each chunk back. `stall_at` makes it stop reading once it has
    that many bytes, until `release` is set: a server that fell behind.
    """

    def __init__(self) -> None:
        self.echo = True
        self.stall_at: int | None = None
        self.release = trio.Event()
        self.port = 0
        self.received = bytearray()
        self.streams: list[trio.SocketStream] = []
        self.outcomes: list[str] = []
        self._changed = trio.lowlevel.ParkingLot()

    async def handle(self, stream: trio.SocketStream) -> None:
        self.streams.append(stream)
        self._changed.unpark_all()
        try:
            while data := await stream.receive_some(CHUNK):
                self.received += data
                self._changed.unpark_all()
                if self.echo:
                    await stream.send_all(data)
                if self.stall_at is not None and len(self.received) >= self.stall_at:
                    await self.release.wait()
            self.outcomes.append("eof")
        except trio.BrokenResourceError:
            self.outcomes.append("reset")
        finally:
            self._changed.unpark_all()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.park()


async def start_upstream(nursery: trio.Nursery, *, rcvbuf: int | None = None) -> Upstream:
    server = Upstream()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    if rcvbuf is not None:  # inherited by accepted sockets, so it sizes their first window
        for listener in listeners:
            listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await nursery.start(trio.serve_listeners, server.handle, listeners)
    server.port = listeners[0].socket.getsockname()[1]
    return server


async def start_proxy(nursery: trio.Nursery, upstream: Upstream) -> FaultProxy:
    proxy = FaultProxy("127.0.0.1", upstream.port)
    port = await nursery.start(proxy.run)
    assert port == proxy.port != 0
    return proxy


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    return await start_upstream(nursery)


@pytest.fixture
async def proxy(nursery: trio.Nursery, upstream: Upstream) -> FaultProxy:
    return await start_proxy(nursery, upstream)


async def connect(proxy: FaultProxy) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", proxy.port)


async def receive_exactly(stream: trio.SocketStream, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = await stream.receive_some(n - len(got))
        assert data, f"EOF after {len(got)} of {n} bytes"
        got += data
    return bytes(got)


async def send_then_read(stream: trio.SocketStream, payload: bytes, ends: list[str]) -> None:
    """Send `payload`, then read once; append how the connection looked to this client.

    Linux reports a RST once, to whichever call comes first: a `send_all` still
    running raises BrokenResourceError (EPIPE or ECONNRESET) and the next read
    then returns b"" (a plain EOF). So "reset" means: the send or the read raised.
    """
    try:
        await stream.send_all(payload)
        data = await stream.receive_some()
    except trio.BrokenResourceError:
        ends.append("reset")
    else:
        ends.append("eof" if not data else f"data {data[:20]!r}")


async def assert_silent(stream: trio.SocketStream) -> None:
    """Nothing (no data, no EOF, no error) arrives within QUIET."""
    with trio.move_on_after(QUIET) as scope:
        data = await stream.receive_some(CHUNK)
        pytest.fail(f"expected silence, got {data!r}")
    assert scope.cancelled_caught


async def test_passthrough_is_byte_exact_both_ways_and_counted(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    payload = random.Random(20240611).randbytes(5 * 2**20)
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, payload)
                echoed = await receive_exactly(client, len(payload))
            await client.send_eof()
            assert await client.receive_some() == b""  # EOF forwarded both ways
        await proxy.wait_live(0)
        await upstream.wait(lambda: upstream.outcomes == ["eof"])
    assert echoed == payload
    assert upstream.received == payload
    assert (proxy.bytes_up, proxy.bytes_down) == (len(payload), len(payload))
    assert (proxy.connections, proxy.live) == (1, 0)


async def test_cut_resets_client_and_server(proxy: FaultProxy, upstream: Upstream) -> None:
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            await client.send_all(b"hello")
            assert await receive_exactly(client, 5) == b"hello"
            assert proxy.live == 1
            assert proxy.cut() == 1
            # Observed: the client's next read raises (ECONNRESET), not a clean b"".
            with pytest.raises(trio.BrokenResourceError):
                await client.receive_some()
        await upstream.wait(lambda: bool(upstream.outcomes))
        await proxy.wait_live(0)
    assert upstream.outcomes == ["reset"]
    assert proxy.cut() == 0


async def test_cut_after_up_bytes_delivers_exactly_n(proxy: FaultProxy, upstream: Upstream) -> None:
    upstream.echo = False
    payload = random.Random(7).randbytes(2**20)
    n = 3 * CHUNK + 12345  # not chunk-aligned: some chunk must be split
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            await client.send_all(b"x" * 100)  # budget counts from arming, not from start
            await proxy.wait_up_bytes(100)
            proxy.cut_after_up_bytes(n)
            ends: list[str] = []
            await send_then_read(client, payload, ends)
        await upstream.wait(lambda: bool(upstream.outcomes))
    assert ends == ["reset"]
    assert upstream.outcomes == ["reset"]
    assert upstream.received == b"x" * 100 + payload[:n]
    assert proxy.bytes_up == 100 + n


async def test_cut_after_up_bytes_still_delivers_n_to_a_stalled_server(
    nursery: trio.Nursery,
) -> None:
    """The last bytes are delivered even when they sat unsent in the proxy's socket.

    A RST throws away a socket's unsent data. With a 4 KiB receive buffer and the
    server stalled 12 kB short of n, the proxy's last `send_all` returns with
    bytes still unsent; cutting right then would lose them (measured: 6-12 kB).
    """
    upstream = await start_upstream(nursery, rcvbuf=4096)
    upstream.echo = False
    proxy = await start_proxy(nursery, upstream)
    payload = random.Random(8).randbytes(2 * 2**20)
    n = 2**20 + 4321
    upstream.stall_at = n - 12_000
    proxy.cut_after_up_bytes(n)
    ends: list[str] = []
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client, trio.open_nursery() as sending:
            sending.start_soon(send_then_read, client, payload, ends)
            await upstream.wait(lambda: len(upstream.received) >= n - 12_000)
            await proxy.wait_up_bytes(n)  # the split head is in the kernel, not yet read
            assert len(upstream.received) < n
            upstream.release.set()
        await upstream.wait(lambda: bool(upstream.outcomes))
    assert ends == ["reset"]
    assert upstream.outcomes == ["reset"]
    assert len(upstream.received) == n
    assert upstream.received == payload[:n]


async def test_blackhole_forwards_nothing_then_only_new_data(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            await proxy.wait_connections(1)
            await upstream.wait(lambda: len(upstream.streams) == 1)
            proxy.blackhole(True)
            await client.send_all(b"lost-up")  # the client's sends still succeed
            await upstream.streams[0].send_all(b"lost-down")
            await assert_silent(client)
            assert upstream.received == b""
            assert (proxy.bytes_up, proxy.bytes_down) == (0, 0)
            assert proxy.live == 1  # no error, no close: just silence

            proxy.blackhole(False)
            await client.send_all(b"after")
            assert await receive_exactly(client, 5) == b"after"
    assert upstream.received == b"after"
    assert (proxy.bytes_up, proxy.bytes_down) == (5, 5)


async def test_refuse_gives_econnrefused_then_listens_on_the_same_port(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    port = proxy.port
    with trio.fail_after(GUARD):
        async with await connect(proxy) as survivor:
            proxy.refuse(True)
            raw = trio.socket.socket()
            with raw, pytest.raises(ConnectionRefusedError) as refused:
                await raw.connect(("127.0.0.1", port))
            assert refused.value.errno == errno.ECONNREFUSED
            # trio's own connect wraps it: an OSError whose cause holds the refusal.
            with pytest.raises(OSError, match="all attempts to connect") as wrapped:
                await connect(proxy)
            cause = wrapped.value.__cause__
            assert isinstance(cause, ExceptionGroup)
            assert [e.errno for e in cause.exceptions] == [errno.ECONNREFUSED]
            # A connection accepted before the refusal keeps working.
            await survivor.send_all(b"still")
            assert await receive_exactly(survivor, 5) == b"still"

            proxy.refuse(False)
            assert proxy.port == port
            async with await connect(proxy) as client:
                await client.send_all(b"again")
                assert await receive_exactly(client, 5) == b"again"
            await proxy.wait_connections(2)
    assert proxy.connections == 2


async def test_hold_down_forwards_up_and_releases_down_in_order(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    pieces = [bytes([65 + i]) * (1000 * (i + 1)) for i in range(5)]
    total = sum(map(len, pieces))
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            proxy.hold_down(True)
            for piece in pieces:
                await client.send_all(piece)
                await trio.sleep(0.005)  # separate reads, so order spans chunks
            await upstream.wait(lambda: len(upstream.received) == total)
            await assert_silent(client)
            assert proxy.bytes_down == 0

            proxy.hold_down(False)
            assert await receive_exactly(client, total) == b"".join(pieces)
    assert upstream.received == b"".join(pieces)


async def test_hold_down_then_cut_drops_the_held_reply(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    """The server read the request (and replied), the client never hears the reply."""
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            proxy.hold_down(True)
            await client.send_all(b"commit")
            await upstream.wait(lambda: upstream.received == b"commit")
            assert proxy.cut() == 1
            with pytest.raises(trio.BrokenResourceError):
                await client.receive_some()
    assert proxy.bytes_down == 0


async def test_delay_adds_at_least_the_latency_each_way_in_order(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    latency = 0.05
    proxy.delay(latency)
    pieces = [bytes([97 + i]) * 100 for i in range(4)]
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            start = trio.current_time()
            await client.send_all(b"ping")
            assert await receive_exactly(client, 4) == b"ping"
            assert trio.current_time() - start >= 2 * latency  # up and down

            for piece in pieces:
                await client.send_all(piece)
                await trio.sleep(0.002)
            assert await receive_exactly(client, 400) == b"".join(pieces)


async def test_unreachable_upstream_resets_the_client(nursery: trio.Nursery) -> None:
    """A refused upstream connect reaches the client as a reset, not a hang."""
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    proxy = FaultProxy("127.0.0.1", dead_port)
    await nursery.start(proxy.run)
    with trio.fail_after(GUARD):
        async with await connect(proxy) as client:
            with pytest.raises(trio.BrokenResourceError):
                await client.receive_some()
        await proxy.wait_live(0)
    assert proxy.connections == 1

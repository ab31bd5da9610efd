"""A fault-injecting TCP proxy for integration tests over loopback.

An integration test puts `FaultProxy` between a real agent process and a real
cloud server process (gRPC over HTTP/2), then injects network faults from the
test body: a reset mid-stream, a black hole, a refused port, latency, or a
server reply that never reaches the client. The proxy runs as a Trio task in
the pytest process; every fault is a plain synchronous method, so a test can
flip it between two awaits and know it already holds.

Each accepted connection gets one nursery and two directions, ``up``
(client -> server) and ``down`` (server -> client). A direction is a reader
task and a writer task joined by a small bounded channel: the reader stamps
each chunk (at most 64 KiB) with the time it was read, and the writer applies
the faults before sending it on. Two tasks rather than one let `delay` add
latency to every chunk without also dividing the throughput by it; the bounded
channel keeps memory flat, because a full channel stops the reader and TCP's
own flow control pushes back on the sender.

Faults are judged per chunk:

* blackhole: a chunk is forwarded only if the black hole is off both when it is
  read and when it would be written; an end-of-stream met inside the black hole
  is swallowed if the black hole is on when the writer reaches it, like a FIN
  lost in a partitioned network.
* hold_down: the down writer waits while the hold is on; the reader keeps
  reading until the channel is full, then the kernel buffers the rest.
* cut_after_up_bytes: the up writer that crosses the budget sends only the
  bytes that fit, waits until the kernel has handed them to the server socket,
  then cuts every live connection.

Mid-stream resets are SO_LINGER(1, 0) + close, which makes the kernel send a
RST and drop whatever it still buffers; a peer that is reading first gets the
bytes already in its receive queue and then ECONNRESET.
"""

from __future__ import annotations

import socket
import struct
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NoReturn, final

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

# Faults apply per chunk read; 64 KiB is also trio's default receive size.
CHUNK: Final = 65536
# Chunks buffered between a direction's reader and writer (at most 1 MiB).
PIPE_DEPTH: Final = 16
_LINGER_RESET: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Bytes read from one side, with the Trio time they were read (for `delay`)."""

    data: bytes
    read_at: float


@final
class _Conn:
    """One proxied connection: its two sockets and the cancel scope that ends it."""

    def __init__(self, client: trio.SocketStream) -> None:
        self.client = client
        self.server: trio.SocketStream | None = None
        self.scope = trio.CancelScope()
        self.aborted = False

    def abort(self) -> None:
        """Reset both sides (RST, not FIN) and cancel the connection's tasks."""
        self.aborted = True
        _reset(self.client)
        if self.server is not None:
            _reset(self.server)
        self.scope.cancel()


def _reset(stream: trio.SocketStream) -> None:
    """Close `stream` so the kernel sends a RST and discards anything it still buffers."""
    sock = stream.socket
    if sock.fileno() == -1:
        return
    # The peer may have gone already; then closing is all that is left to do.
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


@final
class FaultProxy:
    """A loopback TCP proxy to ``upstream_host:upstream_port`` whose faults a test controls.

    Every fault takes effect at once, on live connections and on new ones.
    Counters are plain attributes the proxy updates: ``bytes_up`` and
    ``bytes_down`` count bytes forwarded (not bytes read), ``connections``
    counts accepted connections, ``live`` those open now.

    Args:
        upstream_host: Host of the real server.
        upstream_port: Port of the real server.
        drain_bound: The longest `cut_after_up_bytes` waits for its last bytes to
            leave the proxy's socket before it cuts anyway (a server that stopped
            reading would otherwise keep the cut pending forever).

    Example::

        proxy = FaultProxy("127.0.0.1", server_port)
        port = await nursery.start(proxy.run)
        proxy.hold_down(True)
        ...  # the agent uploads through `port`; the server commits
        proxy.cut()  # the agent never hears the acknowledgement
    """

    def __init__(self, upstream_host: str, upstream_port: int, *, drain_bound: float = 5.0) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._drain_bound = drain_bound
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.live = 0
        self._nursery: trio.Nursery | None = None
        self._listener: trio.SocketListener | None = None
        self._conns: set[_Conn] = set()
        # Every state change unparks all waiters, who then re-check their predicate.
        self._changed = trio.lowlevel.ParkingLot()
        self._blackhole = False
        self._refusing = False
        self._delay = 0.0
        self._holding_down = False
        # None: disarmed; n > 0: cut after n more up bytes; 0: cut in progress.
        self._cut_budget: int | None = None

    async def run(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Listen on 127.0.0.1 (a free port), report it, and proxy until cancelled.

        Args:
            task_status: Receives the listening port once connects can succeed.

        Example::

            port = await nursery.start(proxy.run)
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                self._listen(0)
                if self._refusing:
                    self._close_listener()
                task_status.started(self.port)
                await trio.sleep_forever()
            finally:
                self._nursery = None
                self._close_listener()
        raise AssertionError("unreachable: sleep_forever only ends by raising")

    # Faults.

    def cut(self) -> int:
        """Abort every live connection with a TCP RST to both sides.

        Returns:
            How many connections were cut.
        """
        if self._cut_budget == 0:
            self._cut_budget = None
        conns = list(self._conns)
        for conn in conns:
            conn.abort()
        self._notify()
        return len(conns)

    def cut_after_up_bytes(self, n: int) -> None:
        """Arm a cut: forward exactly `n` more client->server bytes, then `cut`.

        The budget counts bytes across all connections. The writer that crosses
        it splits its chunk, waits until the kernel has sent the head to the
        server (at most `drain_bound` seconds), then cuts; any other up writer
        stalls meanwhile, so nothing beyond `n` gets through.

        Args:
            n: Bytes still to forward; 0 cuts now.

        Raises:
            ValueError: If `n` is negative.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            self.cut()
            return
        self._cut_budget = n
        self._notify()

    def blackhole(self, on: bool) -> None:
        """Discard every chunk (and end-of-stream) in both directions while `on`.

        Connections are still accepted and read, so peers see silence rather than
        an error. Turning it off forwards data read from then on; what was
        discarded stays lost.
        """
        self._blackhole = on
        self._notify()

    def refuse(self, on: bool) -> None:
        """Close the listening socket (connects get ECONNREFUSED), or listen again.

        Live connections are untouched. Listening again uses the same port
        (SO_REUSEADDR) and is in effect when this returns.

        Raises:
            OSError: If the port cannot be bound again (another socket took it).
        """
        self._refusing = on
        if on:
            self._close_listener()
        elif self._nursery is not None and self._listener is None:
            self._listen(self.port)

    def delay(self, seconds: float) -> None:
        """Hold each chunk until `seconds` after it was read, in each direction, in order.

        Chunks already waiting are judged against the new value too.
        """
        self._delay = seconds
        self._notify()

    def hold_down(self, on: bool) -> None:
        """Stop forwarding server->client while `on` (up still flows); off releases in order.

        Held bytes are lost if the connection is cut meanwhile: that is how a
        test makes "the server committed, the client never heard".
        """
        self._holding_down = on
        self._notify()

    # Waiters: no polling, each re-checks its condition whenever state changes.

    async def wait_up_bytes(self, n: int) -> None:
        """Return once at least `n` client->server bytes have been forwarded in total."""
        await self._wait_for(lambda: self.bytes_up >= n)

    async def wait_down_bytes(self, n: int) -> None:
        """Return once at least `n` server->client bytes have been forwarded in total."""
        await self._wait_for(lambda: self.bytes_down >= n)

    async def wait_connections(self, n: int) -> None:
        """Return once at least `n` connections have been accepted in total."""
        await self._wait_for(lambda: self.connections >= n)

    async def wait_live(self, n: int) -> None:
        """Return once exactly `n` connections are open (e.g. 0: all closed)."""
        await self._wait_for(lambda: self.live == n)

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            await trio.lowlevel.checkpoint()
            return
        while not predicate():
            await self._changed.park()

    def _notify(self) -> None:
        self._changed.unpark_all()

    # Listening.

    def _listen(self, port: int) -> None:
        """Bind and listen synchronously, so `refuse(False)` holds when it returns."""
        assert self._nursery is not None
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Connections accepted earlier may still hold the port (or TIME_WAIT it).
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            raw.bind(("127.0.0.1", port))
            raw.listen(128)
        except BaseException:
            raw.close()
            raise
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(raw))
        self.port = raw.getsockname()[1]
        self._listener = listener
        self._nursery.start_soon(self._accept_loop, listener)

    def _close_listener(self) -> None:
        # Closing the raw socket (not `aclose`) keeps `refuse` synchronous; trio's
        # close wakes the pending accept with ClosedResourceError.
        if self._listener is not None:
            self._listener.socket.close()
            self._listener = None

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        nursery = self._nursery
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            nursery.start_soon(self._serve, stream)

    # One connection.

    async def _serve(self, client: trio.SocketStream) -> None:
        conn = _Conn(client)
        self._conns.add(conn)
        self.connections += 1
        self.live += 1
        self._notify()
        try:
            with conn.scope:
                await self._proxy(conn)
        finally:
            self._conns.discard(conn)
            self.live -= 1
            self._notify()
            # A FIN for whatever is still open; `abort` already closed the rest.
            client.socket.close()
            if conn.server is not None:
                conn.server.socket.close()

    async def _proxy(self, conn: _Conn) -> None:
        try:
            conn.server = await trio.open_tcp_stream(*self._upstream)
        except OSError:
            conn.abort()  # the client sees a reset, as if the server had refused it
            return
        if conn.aborted:  # cut while the connect was completing
            _reset(conn.server)
            return
        async with trio.open_nursery() as nursery:
            self._start_direction(nursery, conn, up=True)
            self._start_direction(nursery, conn, up=False)

    def _start_direction(self, nursery: trio.Nursery, conn: _Conn, *, up: bool) -> None:
        assert conn.server is not None
        src, dst = (conn.client, conn.server) if up else (conn.server, conn.client)
        send, receive = trio.open_memory_channel[_Chunk](PIPE_DEPTH)
        nursery.start_soon(self._guarded, conn, self._read(src, send))
        nursery.start_soon(self._guarded, conn, self._write(dst, receive, up=up))

    async def _guarded(self, conn: _Conn, pump: Awaitable[None]) -> None:
        """Run one pump; a broken socket on either side resets the whole connection.

        Mirroring a reset onto the other side is what a real network would show:
        the peer that did not fail learns about it at once, not at its next send.
        """
        try:
            await pump
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            conn.abort()

    async def _read(self, src: trio.SocketStream, out: trio.MemorySendChannel[_Chunk]) -> None:
        async with out:
            while data := await src.receive_some(CHUNK):
                if self._blackhole:
                    continue
                await out.send(_Chunk(data, trio.current_time()))

    async def _write(
        self, dst: trio.SocketStream, inbox: trio.MemoryReceiveChannel[_Chunk], *, up: bool
    ) -> None:
        async with inbox:
            async for chunk in inbox:
                await self._wait_due(chunk.read_at)
                if not up:
                    await self._wait_for(lambda: not self._holding_down)
                if self._blackhole:
                    continue
                if up:
                    await self._send_up(dst, chunk.data)
                else:
                    await dst.send_all(chunk.data)
                    self.bytes_down += len(chunk.data)
                    self._notify()
        if not self._blackhole:
            await dst.send_eof()

    async def _wait_due(self, read_at: float) -> None:
        # Re-reads `self._delay` each round, so a new delay applies to waiting chunks.
        while (due := read_at + self._delay) > trio.current_time():
            with trio.move_on_at(due):
                await self._changed.park()

    async def _send_up(self, dst: trio.SocketStream, data: bytes) -> None:
        await self._wait_for(lambda: self._cut_budget != 0)
        budget = self._cut_budget
        if budget is None or len(data) < budget:
            # Reserve the budget before the await, so concurrent connections cannot overshoot.
            if budget is not None:
                self._cut_budget = budget - len(data)
            await dst.send_all(data)
            self.bytes_up += len(data)
            self._notify()
            return
        self._cut_budget = 0
        try:
            await dst.send_all(data[:budget])
            self.bytes_up += budget
            self._notify()
            await self._drain(dst)
        finally:
            # Even if this send broke or was cancelled: the armed cut must happen
            # (and reset the budget), or every other up writer would stall for good.
            self.cut()

    async def _drain(self, dst: trio.SocketStream) -> None:
        """Wait until `dst`'s kernel send queue holds no unsent bytes (bounded).

        A RST discards unsent data, so cutting straight after `send_all` could
        deliver fewer than the promised bytes when the server reads slowly. With
        TCP_NOTSENT_LOWAT at 1 the socket polls writable only once nothing is
        left unsent (Linux, `tcp_stream_memory_free`); on loopback, sent means in
        the server's receive queue, which a RST does not purge.
        """
        with trio.move_on_after(self._drain_bound):
            try:
                dst.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 1)
            except (OSError, AttributeError):  # not Linux: best effort, cut now
                return
            await dst.socket.wait_writable()

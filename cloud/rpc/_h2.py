"""A grpclib ``Server`` that lets clients send large HTTP/2 DATA frames.

HTTP/2 caps a DATA frame at the receiver's ``SETTINGS_MAX_FRAME_SIZE``, 16 KiB
unless the receiver raises it, and grpclib never raises it. A 1 MiB upload
chunk then crosses as 64 frames, and each frame costs the pure-Python h2 stack
on both ends a parse, a flow-control update and an event. Advertising a larger
limit lets a client send a chunk in a few frames. The client's h2 learns the
limit from the server's SETTINGS frame, so Ferry's client needs no change, and
other clients (Viam's SDK) follow the same rule. RFC 9113 §6.5.2 allows
16 KiB to 16 MiB - 1.

grpclib has no option for this, so the server overrides its protocol factory
(``grpclib>=0.4.9,<0.5``, pinned in pyproject.toml).
``tests/cloud/test_h2_frames.py`` fails if a grpclib upgrade stops this working.

The same factory lets ``close`` end the connections it made: grpclib's
``Server.close`` stops listening and cancels handlers, but leaves accepted
connections open, so a robot still connected kept its server-side socket after
the server stopped. Each one is now told GOAWAY and closed.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, final

from grpclib.protocol import H2Protocol
from grpclib.server import Server
from h2.settings import SettingCodes

if TYPE_CHECKING:
    from asyncio import BaseTransport

LOGGER = logging.getLogger("ferry.cloud")

#: The receive limit the server advertises: one 1 MiB chunk in one or two frames.
MAX_FRAME_BYTES = 1 << 20
_RFC_MIN, _RFC_MAX = 1 << 14, (1 << 24) - 1


@final
class _LargeFrameProtocol(H2Protocol):
    """grpclib's protocol, plus one SETTINGS update as the connection opens."""

    def __init__(self, base: H2Protocol, max_frame_bytes: int) -> None:
        super().__init__(base.handler, base.config, base.h2_config)
        self._max_frame_bytes = max_frame_bytes

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        conn = self.connection._connection
        conn.update_settings({SettingCodes.MAX_FRAME_SIZE: self._max_frame_bytes})
        # h2 applies the new limit when the client's ACK arrives, but checks frames
        # against the limit it had when ``receive_data`` began: an ACK and a large
        # frame in one TCP read would fail. Accepting large frames from the start
        # is harmless (the RFC only forbids *sending* past the peer's limit).
        conn.max_inbound_frame_size = self._max_frame_bytes
        self.connection.flush()

    def goodbye(self) -> None:
        """Sends GOAWAY (best effort) and closes the connection; idempotent."""
        connection = getattr(self, "connection", None)  # set once the connection is made
        if connection is None or connection.is_closing():
            return
        try:
            connection._connection.close_connection()
            connection.flush()
        except Exception:  # a broken connection is closed all the same
            LOGGER.debug("GOAWAY not sent; closing the connection anyway", exc_info=True)
        connection.close()


@final
class LargeFrameServer(Server):
    """``grpclib.server.Server`` advertising ``SETTINGS_MAX_FRAME_SIZE = max_frame_bytes``."""

    def __init__(self, *args: Any, max_frame_bytes: int = MAX_FRAME_BYTES, **kwargs: Any) -> None:
        if not _RFC_MIN <= max_frame_bytes <= _RFC_MAX:
            raise ValueError(
                f"max_frame_bytes must be within {_RFC_MIN}..{_RFC_MAX} (RFC 9113), "
                f"got {max_frame_bytes}"
            )
        super().__init__(*args, **kwargs)
        self._max_frame_bytes = max_frame_bytes
        self._protocols: weakref.WeakSet[_LargeFrameProtocol] = weakref.WeakSet()

    def _protocol_factory(self) -> H2Protocol:
        # grpclib's factory registers the connection's handler; keep that, and
        # build our protocol from the same parts.
        protocol = _LargeFrameProtocol(super()._protocol_factory(), self._max_frame_bytes)
        self._protocols.add(protocol)
        return protocol

    def close(self) -> None:
        """Stops listening, cancels running calls and closes every accepted connection."""
        super().close()
        for protocol in list(self._protocols):
            protocol.goodbye()

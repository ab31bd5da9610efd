"""The server's message codec: malformed request bytes are INVALID_ARGUMENT, not a crash.

grpclib decodes a request inside the handler's ``recv_message``; betterproto2
raises assorted exceptions (``ValueError``, ``IndexError``, ``struct.error`` …)
on bytes that are not the message they claim to be, and decodes a field sent
with the wrong wire type to a value of the wrong Python type. This codec turns
both into INVALID_ARGUMENT naming the message type or field, so a fuzzing or
buggy client gets a clear answer, for every service, and the error is never
mistaken for a server bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import betterproto2
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec

from cloud.errors import InvalidArgument
from cloud.rpc._wire import check_wire_types

if TYPE_CHECKING:
    from grpclib._typing import IProtoMessage

# Longest exception text quoted back to the client.
_DETAIL_CHARS = 200


@final
class StrictProtoCodec(ProtoCodec):
    """``ProtoCodec`` whose decode failures are INVALID_ARGUMENT."""

    def decode(self, data: bytes, message_type: type[IProtoMessage]) -> IProtoMessage:
        """Parses ``data`` as ``message_type``.

        Raises:
            GRPCError: INVALID_ARGUMENT when the bytes are not that message.
        """
        try:
            message = super().decode(data, message_type)
        except Exception as exc:  # betterproto2 raises assorted errors on bad input
            detail = f"{type(exc).__name__}: {exc}"[:_DETAIL_CHARS]
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"request is not a valid {message_type.__name__} message ({detail})",
            ) from None
        if isinstance(message, betterproto2.Message):
            # betterproto2 trusts wire types: a field sent with the wrong one decodes
            # to a value of the wrong Python type, which handlers would trip over.
            try:
                check_wire_types(message)
            except InvalidArgument as err:
                raise GRPCError(Status.INVALID_ARGUMENT, str(err)) from None
        return message

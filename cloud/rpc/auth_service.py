"""``proto.rpc.v1.AuthService``: exchange an API key for a bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from protos.gen.proto.rpc import v1 as rpc_pb

if TYPE_CHECKING:
    from cloud.auth import Authenticator
    from cloud.rpc._edge import Edge


@final
class AuthService(rpc_pb.AuthServiceBase):
    """``Authenticate(entity=key id, credentials={type: "api-key", payload: key})``."""

    def __init__(self, edge: Edge, authenticator: Authenticator) -> None:
        self._edge = edge
        self._auth = authenticator

    async def authenticate(
        self, message: rpc_pb.AuthenticateRequest
    ) -> rpc_pb.AuthenticateResponse:
        """Returns a bearer token, or UNAUTHENTICATED."""
        creds = message.credentials or rpc_pb.Credentials()
        token = await self._edge.blocking(
            self._auth.authenticate, message.entity, creds.type, creds.payload
        )
        return rpc_pb.AuthenticateResponse(access_token=token)

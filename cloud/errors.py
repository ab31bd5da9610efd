"""The cloud's error taxonomy, classified once and mapped to gRPC status at the edge.

The ingest, auth and store logic raise these (and only these) for requests that
cannot succeed; each class names its gRPC status in ``grpc_code`` (a plain
string), which the gRPC edge (``cloud/rpc/_edge.py``) and the simulator's
in-process uploader (``sim/uploader.py``) both read, so the two never disagree.
Keeping grpclib out of the logic lets the simulator run it without a transport.
Every message names what is wrong and where (field, offset, upload id).
"""

from __future__ import annotations

from typing import ClassVar


class CloudError(Exception):
    """A request the cloud refuses; ``str(err)`` is the message sent to the client."""

    grpc_code: ClassVar[str] = "INVALID_ARGUMENT"
    """The name of the gRPC status a client sees (``grpclib.const.Status[...]``)."""


class InvalidArgument(CloudError):
    """Malformed, oversized or inconsistent input (gRPC INVALID_ARGUMENT)."""

    grpc_code = "INVALID_ARGUMENT"


class Unauthenticated(CloudError):
    """Missing, malformed, expired or wrong credentials (gRPC UNAUTHENTICATED)."""

    grpc_code = "UNAUTHENTICATED"


class PermissionDenied(CloudError):
    """Valid credentials, but the data is outside the key's scope (gRPC PERMISSION_DENIED)."""

    grpc_code = "PERMISSION_DENIED"


class NotFound(CloudError):
    """A named object (upload id, binary data id) does not exist in scope (gRPC NOT_FOUND)."""

    grpc_code = "NOT_FOUND"


class FailedPrecondition(CloudError):
    """The request is valid but the object's state forbids it (gRPC FAILED_PRECONDITION)."""

    grpc_code = "FAILED_PRECONDITION"


class ResourceExhausted(CloudError):
    """A configured size limit was exceeded (gRPC RESOURCE_EXHAUSTED)."""

    grpc_code = "RESOURCE_EXHAUSTED"

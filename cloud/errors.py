"""The cloud's error taxonomy, classified once and mapped to gRPC status at the edge.

The ingest, auth and store logic raise these (and only these) for requests that
cannot succeed; ``cloud/rpc/_status.py`` maps each class to its gRPC status code.
Keeping grpclib out of the logic lets the simulator run it without a transport.
Every message names what is wrong and where (field, offset, upload id).
"""

from __future__ import annotations


class CloudError(Exception):
    """A request the cloud refuses; ``str(err)`` is the message sent to the client."""


class InvalidArgument(CloudError):
    """Malformed, oversized or inconsistent input (gRPC INVALID_ARGUMENT)."""


class Unauthenticated(CloudError):
    """Missing, malformed, expired or wrong credentials (gRPC UNAUTHENTICATED)."""


class PermissionDenied(CloudError):
    """Valid credentials, but the data is outside the key's scope (gRPC PERMISSION_DENIED)."""


class NotFound(CloudError):
    """A named object (upload id, binary data id) does not exist in scope (gRPC NOT_FOUND)."""


class FailedPrecondition(CloudError):
    """The request is valid but the object's state forbids it (gRPC FAILED_PRECONDITION)."""


class ResourceExhausted(CloudError):
    """A configured size limit was exceeded (gRPC RESOURCE_EXHAUSTED)."""

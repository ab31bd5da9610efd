"""Ferry's error taxonomy for the robot side, classified once at the adapter boundary.

Adapters (gRPC, file system) map what they see into these classes; the sync
actor decides what to do from the class alone: retry with backoff
(``TransientError``, ``OfflineError``), park the file in ``failed/``
(``PermanentError``), or fall back to Viam's RPCs (``ResumableUnsupported``).
"""

from __future__ import annotations


class SyncError(Exception):
    """Any failure to upload a file. ``where`` names what failed (RPC, path, offset)."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


class TransientError(SyncError):
    """The attempt failed but may succeed later: retry after a backoff."""


class OfflineError(TransientError):
    """The cloud cannot be reached (connection refused, UNAVAILABLE, DNS, timeout)."""


class PermanentError(SyncError):
    """Retrying cannot help (INVALID_ARGUMENT, a corrupt file): park the file in failed/."""


class ResumableUnsupported(SyncError):
    """The server has no ``ferry.sync.v1`` service (UNIMPLEMENTED): use Viam's RPCs."""

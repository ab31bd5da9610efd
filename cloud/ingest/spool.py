"""A spool file for streamed uploads: bounded memory, hashed as it is written.

Viam's streaming RPCs may carry a payload of any size in any number of
messages. The server appends each message to a spool file instead of holding
the payload in memory, hashes it on the way, and hands the finished file to the
store, which moves it into the blob directory without copying.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, final

from cloud.errors import InvalidArgument

if TYPE_CHECKING:
    from pathlib import Path


@final
class Spool:
    """One upload's spool file; ``close()`` (or ``discard()``) exactly once.

    Example::

        spool = Spool(spool_dir / "upload-1", limit=64 << 20, what="FileUpload")
        spool.write(chunk)
        path, sha, size = spool.close()
    """

    def __init__(self, path: Path, *, limit: int, what: str) -> None:
        self.path = path
        self._limit = limit
        self._what = what
        self._hash = hashlib.sha256()
        self._size = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._open = True

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, data: bytes) -> None:
        """Appends ``data``.

        Raises:
            InvalidArgument: the payload grew past the configured limit.
        """
        if self._size + len(data) > self._limit:
            raise InvalidArgument(
                f"{self._what}: payload exceeds the server's limit of {self._limit} bytes"
            )
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hash.update(data)
        self._size += len(data)

    def close(self) -> tuple[Path, str, int]:
        """Makes the spool durable; returns ``(path, sha256 hex, size)``."""
        try:
            os.fsync(self._fd)
        finally:
            self._open = False
            os.close(self._fd)
        return self.path, self._hash.hexdigest(), self._size

    def discard(self) -> None:
        """Closes and removes the spool (the upload failed)."""
        if self._open:
            self._open = False
            os.close(self._fd)
        self.path.unlink(missing_ok=True)

"""The SHA-256 of each upload's committed bytes, kept up to date as its chunks commit.

A finish checks that the committed bytes hash to the identity's SHA-256. Read
back from the staging file, that is a second pass over every byte (and, since
the store evicts a large upload's durable pages, a pass over the disk). The
bytes of each chunk are in memory when it commits, so the store hashes them
there, in order, and the finish takes the digest.

Only what this process saw is known: after a restart, or when a chunk arrives
that does not continue the hash (its offset is not where the hash stands), the
upload has no running hash and the finish reads the file, as before. Bounded:
the least recently written uploads are forgotten first.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from hashlib import _Hash

#: Uploads whose running hash is kept at most (a hash costs about 200 bytes).
RUNNING_LIMIT = 4096


@final
class RunningHashes:
    """Per upload: how many leading bytes are hashed, and the hash so far.

    Callers hold the upload's own lock (the store's lock stripes), so one
    upload's hash is never updated by two threads at once; the table itself has
    its own lock, since different uploads update it from different threads.

    Example::

        hashes = RunningHashes()
        hashes.committed("up-1", 0, chunk)  # after the chunk's offset update committed
        hashes.digest("up-1", size)  # None unless exactly ``size`` bytes are hashed
    """

    def __init__(self, limit: int = RUNNING_LIMIT) -> None:
        self._limit = limit
        self._by_id: dict[str, tuple[int, _Hash]] = {}
        self._lock = threading.Lock()

    def committed(self, upload_id: str, offset: int, data: bytes | memoryview) -> None:
        """Adds a chunk committed at ``offset``; a chunk that does not continue the hash ends it."""
        with self._lock:
            entry = self._by_id.pop(upload_id, None)
        if offset == 0:
            running = hashlib.sha256()
        elif entry is not None and entry[0] == offset:
            running = entry[1]
        else:
            return  # bytes before this chunk were not seen here: the finish reads the file
        running.update(data)
        with self._lock:
            self._by_id[upload_id] = (offset + len(data), running)
            while len(self._by_id) > self._limit:
                del self._by_id[next(iter(self._by_id))]

    def digest(self, upload_id: str, size: int) -> bytes | None:
        """The SHA-256 of the upload's first ``size`` bytes, if exactly those were hashed."""
        with self._lock:
            entry = self._by_id.get(upload_id)
        if entry is None or entry[0] != size:
            return None
        return entry[1].copy().digest()

    def forget(self, upload_id: str) -> None:
        """Drops an upload's hash (finished or expired)."""
        with self._lock:
            self._by_id.pop(upload_id, None)

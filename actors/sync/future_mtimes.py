"""Arbitrary files whose mtime is ahead of the wall clock: judged by the monotonic clock.

An arbitrary file is synced once unmodified for ``file_last_modified_millis``,
judged by its mtime against the wall clock (spec §4.3). When the wall clock
steps back (an NTP correction, a reset real-time clock), every file written
before the step has an mtime in the future, and by that rule it waits until the
clock catches up: hours or days after a large step. A file whose upload a
restart interrupted waits as long (the simulator found it: a 27 h step back,
then a robot crash, and two files never synced).

A file whose mtime is ahead of the clock has not been written since the step (a
write sets its mtime to the clock's time). ``FutureMtimes`` judges such a file
by Trio's clock instead, which never steps: ready once the walks have seen it
with the same size and mtime for the threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import trio

if TYPE_CHECKING:
    from pathlib import Path


@final
class FutureMtimes:
    """Remembers when each file with a future mtime was first seen as it is now.

    One instance outlives the walks (the sync actor owns it). It holds one entry
    per such file seen in the last walk, so it is bounded by the files on disk.

    Example::

        future = FutureMtimes()
        future.ready(path, size, mtime_ns, threshold_ns)  # False: first seen now
        # ... a walk at least threshold_ns later, the file unchanged:
        future.ready(path, size, mtime_ns, threshold_ns)  # True
    """

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, int, float]] = {}
        self._walked: set[Path] = set()

    def ready(self, path: Path, size: int, mtime_ns: int, threshold_ns: int) -> bool:
        """Whether the file has kept this size and mtime for ``threshold_ns`` of Trio's time."""
        now = trio.current_time()
        self._walked.add(path)
        seen = self._seen.get(path)
        if seen is None or seen[:2] != (size, mtime_ns):
            self._seen[path] = (size, mtime_ns, now)
            return threshold_ns <= 0
        return (now - seen[2]) * 1e9 >= threshold_ns

    def end_walk(self) -> None:
        """Forgets the files this walk did not meet (synced, gone, or no longer ahead)."""
        self._seen = {path: seen for path, seen in self._seen.items() if path in self._walked}
        self._walked = set()

    def __len__(self) -> int:
        return len(self._seen)


__all__ = ["FutureMtimes"]

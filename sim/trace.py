"""The simulation trace: every decision, stamped with its virtual time, folded into one hash.

Two runs of the same seed must make the same decisions in the same order, so
the hash of the trace is the run's fingerprint (``ferry sim`` prints it). Only
the last events are kept in memory: a violation report shows them.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Callable

KEPT_EVENTS = 40
"""How many recent events a violation report shows."""


@final
class Trace:
    """An append-only log of ``(virtual time, kind, detail)`` with a running SHA-256.

    Example::

        trace = Trace(trio.current_time)
        trace.event("net", "drop WriteChunk upload-3 @65536")
        print(trace.hexdigest())
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._hash = hashlib.sha256()
        self.recent: deque[str] = deque(maxlen=KEPT_EVENTS)
        self.counts: Counter[str] = Counter()

    def event(self, kind: str, detail: str) -> None:
        """Records one decision; ``detail`` must not hold anything run-specific (no temp paths)."""
        line = f"{self._now():.6f} {kind} {detail}"
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.recent.append(line)
        self.counts[kind] += 1

    def hexdigest(self) -> str:
        """The hash of every event so far (the first 16 hex digits identify a run)."""
        return self._hash.hexdigest()[:16]

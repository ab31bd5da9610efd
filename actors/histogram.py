"""A fixed-size latency histogram: constant memory, cheap to add to, percentiles on demand."""

from __future__ import annotations

import math
from typing import final

# Bucket edges in seconds: 50 µs steps to 5 ms, then doubling to ~10 s.
_FINE = [i * 50e-6 for i in range(1, 101)]
_COARSE = [5e-3 * 2**i for i in range(1, 12)]
EDGES = tuple(_FINE + _COARSE)


def bucket(seconds: float) -> int:
    """Index into ``LatencyHistogram.counts`` of the bucket holding ``seconds``."""
    if seconds < 5e-3:
        return max(0, math.ceil(seconds / 50e-6) - 1)
    return min(len(EDGES), 100 + max(0, math.ceil(math.log2(seconds / 5e-3)) - 1))


@final
class LatencyHistogram:
    """Counts durations into fixed buckets (upper edges in ``EDGES``).

    Example::

        h = LatencyHistogram()
        h.add(0.0004)
        h.percentile(99)  # 0.0004 .. 0.00045, the bucket's upper edge
    """

    def __init__(self) -> None:
        self.counts = [0] * (len(EDGES) + 1)
        self.total = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Records one duration (negative counts as zero)."""
        self.add_at(bucket(seconds), seconds)

    def add_at(self, index: int, seconds: float) -> None:
        """Records ``seconds``, whose bucket ``bucket(seconds)`` already found.

        For a cohort, whose members all share one tick's lateness: the bucket is
        found once per tick instead of once per member.
        """
        self.counts[index] += 1
        self.total += 1
        if seconds > self.max:
            self.max = seconds

    def percentile(self, p: float) -> float:
        """Upper edge of the bucket holding the ``p``-th percentile (0 if empty)."""
        if not self.total:
            return 0.0
        rank = math.ceil(self.total * p / 100)
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(EDGES[index], self.max) if index < len(EDGES) else self.max
        return self.max

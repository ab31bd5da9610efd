"""An upload bandwidth cap shared by every sync worker: a token bucket on Trio's clock.

The bucket holds at most one second's worth of bytes and starts full, so an idle
link may send a one-second burst at once. A request waits until its bytes have
been earned; a request larger than the bucket is allowed and simply waits in
proportion to its size, so a 2 MiB chunk under a 100 kB/s cap takes about 20 s
instead of never being sent. Waiters are served in arrival order: the waiting is
done while holding a ``trio.Lock``, which is fair (FIFO), so a worker asking for
big chunks cannot starve one asking for small ones, nor the other way round.

Guarantee: over any window of ``w`` seconds the bytes granted are at most
``max(burst, largest request) + rate * w``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

import trio


@final
@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """What a ``BandwidthLimiter`` has done: bytes granted in total, tasks queued."""

    bytes_granted: int
    tasks_waiting: int


@final
class BandwidthLimiter:
    """Caps the upload rate of all the workers sharing it at ``bytes_per_sec``.

    Args:
        bytes_per_sec: the cap; 0 means unlimited.

    Raises:
        ValueError: ``bytes_per_sec`` is negative.

    Example::

        limiter = BandwidthLimiter(1_000_000)
        await limiter.acquire(len(chunk))
        await uploader.write(upload_id, offset, chunk)
    """

    def __init__(self, bytes_per_sec: int) -> None:
        if bytes_per_sec < 0:
            raise ValueError(f"bytes_per_sec must be >= 0, got {bytes_per_sec}")
        self.rate = bytes_per_sec
        self.burst = bytes_per_sec  # one second's worth
        self._tokens = float(self.burst)
        self._stamp: float | None = None  # Trio time of the last refill; set on first use
        self._lock = trio.Lock()
        self._granted = 0

    async def acquire(self, n: int) -> None:
        """Waits until ``n`` more bytes may be sent, then counts them as sent.

        Always a checkpoint. Cancelled while waiting, it grants nothing and the
        bytes earned meanwhile stay in the bucket.

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"cannot acquire a negative byte count ({n})")
        if self.rate == 0 or n == 0:
            await trio.lowlevel.checkpoint()
            self._granted += n
            return
        async with self._lock:
            start = trio.current_time()
            self._refill(start)
            if self._tokens < n:
                # Earn the shortfall while holding the lock; later requests queue behind.
                await trio.sleep_until(start + (n - self._tokens) / self.rate)
                now = trio.current_time()
                self._tokens += (now - start) * self.rate  # uncapped: this request pays
                self._stamp = now
            self._tokens = min(float(self.burst), self._tokens - n)
            self._granted += n

    def statistics(self) -> LimiterStatistics:
        """Bytes granted so far and the number of tasks waiting behind the current one."""
        return LimiterStatistics(self._granted, self._lock.statistics().tasks_waiting)

    def _refill(self, now: float) -> None:
        if self._stamp is not None:
            earned = (now - self._stamp) * self.rate
            self._tokens = min(float(self.burst), self._tokens + earned)
        self._stamp = now

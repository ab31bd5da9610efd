"""Retry delays for sync: 200 ms, doubling, capped at one hour, with jitter (spec §4.5).

Pure and Trio-free so the state machine and its property tests can use it. The
jitter value comes from the caller's injected ``random.Random`` (a float in
[0, 1)), never from the global generator, so a seeded run repeats exactly.
"""

from __future__ import annotations

from actors.planted import Bug, planted

INITIAL_DELAY_S = 0.2
"""The first retry waits this long (Viam's InitialWaitTimeMillis)."""
FACTOR = 2.0
"""Each further failure multiplies the wait by this (RetryExponentialFactor)."""
MAX_DELAY_S = 3600.0
"""No wait is ever longer than one hour (maxRetryInterval)."""
JITTER = 0.2
"""A wait is stretched by up to this fraction, so a fleet's robots drift apart."""


def backoff_delay(attempt: int, jitter: float) -> float:
    """The wait before retry number ``attempt`` (1 = the first retry).

    The nominal wait is ``0.2 s * 2**(attempt - 1)``; jitter stretches it by up to
    20 %; the result never exceeds one hour. Each robot's retry times are the sum
    of its jittered waits, so robots that lost the network together drift apart
    before they reach the cap, where each keeps its own phase.

    Example::

        backoff_delay(1, 0.0) == 0.2 and backoff_delay(40, 0.5) == 3600.0

    Raises:
        ValueError: ``attempt`` < 1 or ``jitter`` outside [0, 1).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    # 2**(attempt-1) overflows a float near attempt 1024: the cap is reached long before.
    exponent = min(attempt - 1, 64)
    if planted(Bug.BACKOFF_WITHOUT_CAP):
        return INITIAL_DELAY_S * FACTOR**exponent * (1.0 + JITTER * jitter)
    nominal = min(MAX_DELAY_S, INITIAL_DELAY_S * FACTOR**exponent)
    return min(MAX_DELAY_S, nominal * (1.0 + JITTER * jitter))

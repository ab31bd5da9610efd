"""``backoff_delay``: 200 ms, doubling, capped at one hour, stretched by up to 20 % jitter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.sync.backoff import (
    FACTOR,
    INITIAL_DELAY_S,
    JITTER,
    MAX_DELAY_S,
    backoff_delay,
)

JITTERS = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
ATTEMPTS = st.integers(min_value=1, max_value=10_000)
PROPS = settings(max_examples=200, deadline=None)


def nominal(attempt: int) -> float:
    """The documented nominal wait, computed independently (exact via Python ints)."""
    if attempt > 60:
        return MAX_DELAY_S
    return min(MAX_DELAY_S, 0.2 * 2 ** (attempt - 1))


def test_the_policy_constants_are_the_documented_ones():
    assert (INITIAL_DELAY_S, FACTOR, MAX_DELAY_S, JITTER) == (0.2, 2.0, 3600.0, 0.2)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (1, 0.2),
        (2, 0.4),
        (3, 0.8),
        (4, 1.6),
        (5, 3.2),
        (10, 102.4),
        (14, 1638.4),
        (15, 3276.8),
        (16, 3600.0),  # 6553.6 nominal: capped
        (17, 3600.0),
    ],
)
def test_without_jitter_the_wait_starts_at_200ms_and_doubles_until_the_cap(
    attempt: int, expected: float
):
    assert backoff_delay(attempt, 0.0) == pytest.approx(expected, rel=1e-12)


def test_each_wait_doubles_the_previous_one_below_the_cap():
    for attempt in range(1, 15):
        assert backoff_delay(attempt + 1, 0.0) == pytest.approx(2 * backoff_delay(attempt, 0.0))


@pytest.mark.parametrize("attempt", [16, 17, 40, 64, 65, 66, 1000, 1024, 1025, 5000, 10_000])
@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 0.999_999_999_999])
def test_the_cap_is_reached_and_never_exceeded(attempt: int, jitter: float):
    assert backoff_delay(attempt, jitter) == MAX_DELAY_S


def test_the_docstring_example():
    assert backoff_delay(1, 0.0) == 0.2
    assert backoff_delay(40, 0.5) == 3600.0


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.5, 0.22),
        (1, 0.999_999, 0.2 * (1 + 0.2 * 0.999_999)),
        (3, 0.25, 0.84),
        (14, 0.5, 1802.24),
        (15, 0.5, 3600.0),  # 3276.8 * 1.1 = 3604.48: stretched past the cap, so capped
        (15, 0.05, 3276.8 * 1.01),
    ],
)
def test_jitter_stretches_the_wait_by_at_most_20_percent(
    attempt: int, jitter: float, expected: float
):
    assert backoff_delay(attempt, jitter) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("attempt", [0, -1, -10_000])
def test_an_attempt_below_one_is_rejected(attempt: int):
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_delay(attempt, 0.0)


@pytest.mark.parametrize("jitter", [-0.1, -1e-300, 1.0, 1.5, math.inf, -math.inf, math.nan])
def test_a_jitter_outside_the_unit_interval_is_rejected(jitter: float):
    with pytest.raises(ValueError, match="jitter must be in"):
        backoff_delay(1, jitter)


@PROPS
@given(attempt=ATTEMPTS, jitter=JITTERS)
def test_the_wait_is_monotone_in_the_attempt_for_a_fixed_jitter(attempt: int, jitter: float):
    assert backoff_delay(attempt, jitter) <= backoff_delay(attempt + 1, jitter)


@PROPS
@given(attempt=ATTEMPTS, jitter=JITTERS)
def test_the_wait_lies_between_nominal_and_the_stretched_capped_nominal(
    attempt: int, jitter: float
):
    delay = backoff_delay(attempt, jitter)
    low = nominal(attempt)
    high = min(MAX_DELAY_S, (1 + JITTER) * low)
    # A relative 1e-12 absorbs the float rounding of 0.2 * 2**n and of the stretch.
    assert low * (1 - 1e-12) <= delay <= high * (1 + 1e-12)
    assert 0 < delay <= MAX_DELAY_S


@PROPS
@given(attempt=ATTEMPTS, low=JITTERS, high=JITTERS)
def test_more_jitter_never_shortens_the_wait(attempt: int, low: float, high: float):
    low, high = sorted((low, high))
    assert backoff_delay(attempt, low) <= backoff_delay(attempt, high)

"""``PreciseClock``: Trio's timers fire on their deadline, not up to 1 ms after it."""

from __future__ import annotations

import math

import trio
from hypothesis import assume, given
from hypothesis import strategies as st

from actors.adapters.clock import PreciseClock


def epoll_wait_ms(timeout_s: float) -> int:
    """What CPython's ``epoll.poll`` waits: nanoseconds rounded up, then milliseconds rounded up."""
    return math.ceil(math.ceil(timeout_s * 1e9) / 1e6)


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def clock_at(now: float) -> tuple[PreciseClock, FakeTime]:
    fake = FakeTime(now)
    return PreciseClock(now=lambda: fake.now, sleep=fake.sleep), fake


@given(
    now=st.floats(min_value=0.0, max_value=1e6),
    remaining=st.floats(min_value=1e-3, max_value=0.999),
)
def test_the_loop_waits_whole_milliseconds_that_end_before_the_deadline(
    now: float, remaining: float
) -> None:
    clock, fake = clock_at(now)
    deadline = now + remaining
    left = deadline - now  # what the clock sees, after float rounding
    assume(left >= 1e-3)
    waited = epoll_wait_ms(clock.deadline_to_sleep_time(deadline)) / 1e3
    assert waited <= left  # never past the deadline
    assert left - waited < 1e-3  # and less than 1 ms short of it
    assert fake.slept == []


@given(remaining=st.floats(min_value=1e-9, max_value=0.000999))
def test_the_last_fraction_of_a_millisecond_is_slept_then_the_loop_polls(
    remaining: float,
) -> None:
    clock, fake = clock_at(100.0)
    assert clock.deadline_to_sleep_time(100.0 + remaining) == 0.0
    assert len(fake.slept) == 1
    assert math.isclose(fake.slept[0], remaining, rel_tol=1e-6, abs_tol=1e-12)


def test_a_deadline_already_past_polls_at_once_without_sleeping() -> None:
    clock, fake = clock_at(50.0)
    assert clock.deadline_to_sleep_time(49.0) == 0.0
    assert clock.deadline_to_sleep_time(50.0) == 0.0
    assert fake.slept == []


def test_far_and_absent_deadlines_wait_without_rounding() -> None:
    clock, fake = clock_at(10.0)
    assert clock.deadline_to_sleep_time(math.inf) == math.inf
    assert math.isclose(clock.deadline_to_sleep_time(13.5), 3.499)
    assert fake.slept == []


def test_timers_under_the_real_clock_never_fire_before_their_deadline() -> None:
    woke_late: list[float] = []

    async def main() -> None:
        start = trio.current_time()
        for k in range(1, 30):
            due = start + k * 0.0017  # deadlines between millisecond boundaries
            await trio.sleep_until(due)
            woke_late.append(trio.current_time() - due)
        with trio.move_on_after(0.0025) as scope:
            await trio.sleep_forever()
        assert scope.cancelled_caught

    trio.run(main, clock=PreciseClock())
    assert len(woke_late) == 29
    assert min(woke_late) >= 0.0

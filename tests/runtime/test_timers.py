"""``actors.timers``: a sleep that wakes on its deadline, and is cancelled, as Trio's does."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.timers import sleep, sleep_until


async def test_sleep_until_wakes_exactly_at_its_deadline(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    await sleep_until(start + 2.5)
    assert trio.current_time() == start + 2.5
    await sleep(0.25)
    assert trio.current_time() == start + 2.75


async def test_a_past_deadline_is_a_checkpoint_not_a_wait(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    await sleep_until(start - 10.0)
    await sleep(0)
    assert trio.current_time() == start
    with trio.CancelScope() as scope:
        scope.cancel()
        await sleep_until(start - 10.0)  # a cancel point, as Trio's sleeps are
        pytest.fail("a cancelled scope's sleep returned")
    assert scope.cancelled_caught


async def test_a_cancel_from_outside_ends_the_sleep_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    ended: list[float] = []

    async def sleeper(scope: trio.CancelScope) -> None:
        with scope:
            await sleep_until(start + 100.0)
        ended.append(trio.current_time())

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, scope)
        await trio.sleep(3.0)
        scope.cancel()
    assert scope.cancelled_caught
    assert ended == [start + 3.0]


async def test_an_enclosing_deadline_before_the_sleeps_raises_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    with trio.move_on_after(1.0) as outer:
        await sleep_until(start + 5.0)
    assert outer.cancelled_caught
    assert trio.current_time() == start + 1.0


async def test_a_shielded_sleep_ignores_an_enclosing_cancel(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    with trio.CancelScope() as outer:
        outer.cancel()
        with trio.CancelScope(shield=True):
            await sleep_until(start + 2.0)
        assert trio.current_time() == start + 2.0
        await trio.lowlevel.checkpoint()  # the enclosing cancel, raised at the next checkpoint
    assert outer.cancelled_caught


async def test_an_infinite_deadline_sleeps_until_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    with trio.move_on_after(7.0):
        await sleep_until(math.inf)
    assert trio.current_time() == start + 7.0


async def test_bad_durations_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="NaN"):
        await sleep_until(math.nan)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        await sleep(-1.0)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        await sleep(math.nan)


@settings(max_examples=50, deadline=None)
@given(
    periods=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
    cancel_at=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
)
def test_wakes_in_the_same_order_and_at_the_same_times_as_trios_sleep(
    periods: list[int], cancel_at: int | None
) -> None:
    """Tasks ticking at their own periods (deadlines often coincide), with an optional
    cancel of them all, see the same wake-ups under either sleep."""

    def wakes(sleeper_fn: object) -> list[tuple[int, float]]:
        log: list[tuple[int, float]] = []

        async def ticker(k: int, period: float) -> None:
            due = 0.0
            for _ in range(6):
                due += period
                await sleeper_fn(due)  # type: ignore[operator]
                log.append((k, trio.current_time()))

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                for k, period in enumerate(periods):
                    nursery.start_soon(ticker, k, period / 10)
                if cancel_at is not None:
                    await trio.sleep(cancel_at / 10 + 0.05)  # between ticks
                    nursery.cancel_scope.cancel()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        return sorted(log)

    assert wakes(sleep_until) == wakes(trio.sleep_until)

"""Bandwidth limiter guarantees: the cap holds, bursts are bounded, waiters are served FIFO.

Every timing assertion is in Trio's virtual time (``autojump_clock``), so the
durations are exact and the tests take no real time.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.sync.limiter import BandwidthLimiter

MB = 1_000_000
GUARD_S = 10_000  # virtual seconds: a hang fails the test instead of blocking it


async def test_ten_megabytes_at_one_megabyte_per_second_take_nine_seconds(autojump_clock):
    """The cap: after the one-second burst, bytes flow at exactly the configured rate."""
    limiter = BandwidthLimiter(MB)
    with trio.fail_after(GUARD_S):
        t0 = trio.current_time()
        for _ in range(10):
            await limiter.acquire(MB)
        assert trio.current_time() - t0 == 9.0
    assert limiter.statistics().bytes_granted == 10 * MB


async def test_one_request_larger_than_the_bucket_waits_proportionally(autojump_clock):
    """A request above the burst is allowed and waits for the bytes it lacks (10 MB: 9 s)."""
    limiter = BandwidthLimiter(MB)
    with trio.fail_after(GUARD_S):
        t0 = trio.current_time()
        await limiter.acquire(10 * MB)
        assert trio.current_time() - t0 == 9.0


async def test_a_two_mib_chunk_passes_a_100_kb_per_second_cap(autojump_clock):
    """A chunk 20x the bucket is sent after ~20 s, and the next one waits its full share."""
    limiter = BandwidthLimiter(100_000)
    chunk = 2 * 1024 * 1024
    with trio.fail_after(GUARD_S):
        t0 = trio.current_time()
        await limiter.acquire(chunk)
        assert trio.current_time() - t0 == pytest.approx((chunk - 100_000) / 100_000)
        t1 = trio.current_time()
        await limiter.acquire(chunk)
        assert trio.current_time() - t1 == pytest.approx(chunk / 100_000)


async def test_an_idle_link_saves_up_at_most_one_second_of_bytes(autojump_clock):
    """The burst is bounded: after 60 idle seconds, 3 MB at 1 MB/s still takes 2 s."""
    limiter = BandwidthLimiter(MB)
    with trio.fail_after(GUARD_S):
        await limiter.acquire(MB)  # drains the initial burst
        await trio.sleep(60)
        t0 = trio.current_time()
        for _ in range(3):
            await limiter.acquire(MB)
        assert trio.current_time() - t0 == 2.0


async def test_zero_means_unlimited(autojump_clock):
    """A cap of 0 never waits, yet still counts what it granted and checkpoints."""
    limiter = BandwidthLimiter(0)
    with trio.fail_after(GUARD_S):
        t0 = trio.current_time()
        for _ in range(100):
            await limiter.acquire(10 * MB)
        assert trio.current_time() == t0
    assert limiter.statistics().bytes_granted == 1000 * MB


async def test_waiters_are_served_in_arrival_order(autojump_clock):
    """Fairness: a small request that arrives later never overtakes a big one (FIFO)."""
    limiter = BandwidthLimiter(MB)
    order: list[str] = []

    async def worker(name: str, n: int) -> None:
        await limiter.acquire(n)
        order.append(name)

    with trio.fail_after(GUARD_S):
        await limiter.acquire(MB)  # empty bucket: everyone below has to wait
        async with trio.open_nursery() as nursery:
            for name, n in [("big", 5 * MB), ("small", 1), ("medium", MB)]:
                nursery.start_soon(worker, name, n)
                await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().tasks_waiting == 2
    assert order == ["big", "small", "medium"]


async def test_concurrent_workers_share_one_cap(autojump_clock):
    """Three workers sending 1 MB chunks together still get 1 MB/s in total."""
    limiter = BandwidthLimiter(MB)

    async def worker() -> None:
        for _ in range(4):
            await limiter.acquire(MB)

    with trio.fail_after(GUARD_S):
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(worker)
        assert trio.current_time() - t0 == 11.0  # 12 MB: 1 MB burst + 11 s


async def test_a_cancelled_wait_grants_nothing_and_keeps_what_was_earned(autojump_clock):
    """Cancellation: no bytes are counted, and the time spent waiting is not lost."""
    limiter = BandwidthLimiter(MB)
    with trio.fail_after(GUARD_S):
        await limiter.acquire(MB)
        with trio.move_on_after(0.5):
            await limiter.acquire(MB)
        assert limiter.statistics().bytes_granted == MB
        t0 = trio.current_time()
        await limiter.acquire(MB)
        assert trio.current_time() - t0 == 0.5


def test_negative_values_are_rejected():
    """Misuse fails loudly instead of disabling the cap."""
    with pytest.raises(ValueError, match="bytes_per_sec"):
        BandwidthLimiter(-1)


async def test_a_negative_request_is_rejected():
    """A negative byte count would mint tokens: refused."""
    with pytest.raises(ValueError, match="negative"):
        await BandwidthLimiter(MB).acquire(-1)


requests = st.lists(
    st.tuples(
        st.integers(0, 3),  # worker
        st.sampled_from([0.0, 0.0, 0.25, 1.5, 4.0]),  # pause before the request, seconds
        st.integers(1, 3 * MB),  # bytes
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(rate=st.integers(1000, 2 * MB), plan=requests)
def test_the_rate_is_never_exceeded_over_any_window(rate: int, plan):
    """Over every window [a, b] between grants, the bytes granted are at most
    max(burst, largest request) + rate * (b - a); since the start, burst + rate * t."""
    limiter = BandwidthLimiter(rate)
    grants: list[tuple[float, int]] = []

    async def worker(steps: list[tuple[float, int]]) -> None:
        for pause, n in steps:
            await trio.sleep(pause)
            await limiter.acquire(n)
            grants.append((trio.current_time(), n))

    async def main() -> float:
        t0 = trio.current_time()
        with trio.fail_after(10**6):
            async with trio.open_nursery() as nursery:
                for w in range(4):
                    nursery.start_soon(worker, [(p, n) for i, p, n in plan if i == w])
        return t0

    t0 = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    allowance = max(rate, max(n for _, _, n in plan))
    slack = 1e-6 * rate + 1  # float rounding of the virtual times
    assert sum(n for _, n in grants) == sum(n for _, _, n in plan)
    for i, (a, _) in enumerate(grants):
        total = 0
        for b, n in grants[i:]:
            total += n
            assert total <= allowance + rate * (b - a) + slack
    total = 0
    for b, n in grants:
        total += n
        assert total <= rate + rate * (b - t0) + slack  # the burst is one second

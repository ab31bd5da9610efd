"""``JumpingClock``: virtual time moves only when nothing can run, straight to the next deadline."""

from __future__ import annotations

import trio

from sim.clock import JumpingClock


def test_a_sleep_ends_exactly_at_its_deadline_and_costs_no_real_time() -> None:
    seen: list[float] = []

    async def main() -> None:
        await trio.sleep(3600.0)
        seen.append(trio.current_time())
        await trio.sleep_until(7200.5)
        seen.append(trio.current_time())

    trio.run(main, clock=JumpingClock())
    assert seen == [3600.0, 7200.5]


def test_sleepers_wake_in_deadline_order_at_their_own_times() -> None:
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await trio.sleep(seconds)
        woke.append((name, trio.current_time()))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for name, seconds in (("c", 30.0), ("a", 10.0), ("b", 20.0)):
                nursery.start_soon(sleeper, name, seconds)

    trio.run(main, clock=JumpingClock())
    assert woke == [("a", 10.0), ("b", 20.0), ("c", 30.0)]


def test_time_stands_still_while_any_task_can_run() -> None:
    times: set[float] = set()

    async def busy() -> None:
        for _ in range(1000):
            times.add(trio.current_time())
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 5.0)
            nursery.start_soon(busy)
        times.add(trio.current_time())

    trio.run(main, clock=JumpingClock())
    assert times == {0.0, 5.0}


def test_timeouts_fire_at_virtual_deadlines() -> None:
    async def main() -> float:
        with trio.move_on_after(90.0):
            await trio.sleep_forever()
        return trio.current_time()

    assert trio.run(main, clock=JumpingClock()) == 90.0

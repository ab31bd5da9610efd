"""Supervision guarantees: ordered start, reverse stop, restart with backoff, intensity."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from actors.supervisor import ChildSpec, Restart, Supervisor, SupervisorGaveUp


def _recorder(log: list[str], name: str, *, fail_times: int = 0):
    state = {"failures": 0}

    async def run(*, task_status=trio.TASK_STATUS_IGNORED):
        log.append(f"start {name}")
        try:
            task_status.started()
            if state["failures"] < fail_times:
                state["failures"] += 1
                raise RuntimeError(f"{name} boom {state['failures']}")
            await trio.sleep_forever()
        finally:
            log.append(f"stop {name}")

    return run


async def test_children_start_in_order_and_stop_in_reverse(autojump_clock):
    log: list[str] = []
    sup = Supervisor("t", rng=random.Random(0))
    specs = [ChildSpec(n, _recorder(log, n)) for n in ("a", "b", "c")]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run, specs)
            assert log == ["start a", "start b", "start c"]
            nursery.cancel_scope.cancel()
    assert log[3:] == ["stop c", "stop b", "stop a"]


async def test_failed_child_is_restarted_with_backoff_and_counted(autojump_clock):
    log: list[str] = []
    sup = Supervisor("t", rng=random.Random(0), backoff_initial=1.0, intensity=10)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            await nursery.start(
                sup.run, [ChildSpec("flaky", _recorder(log, "flaky", fail_times=3))]
            )
            await trio.sleep(30)
            assert sup.stats["flaky"].failures == 3
            assert sup.stats["flaky"].starts == 4
            assert sup.stats["flaky"].running
            assert "flaky boom 3" in sup.stats["flaky"].last_error
            # Backoff doubles from 1 s with jitter in [0.5, 1): at least 0.5+1+2 seconds passed.
            assert trio.current_time() - t0 >= 3.5
            nursery.cancel_scope.cancel()


async def test_one_failing_child_never_stops_its_siblings(autojump_clock):
    log: list[str] = []
    sup = Supervisor("t", rng=random.Random(1), intensity=100, backoff_initial=0.1)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                sup.run,
                [
                    ChildSpec("ok", _recorder(log, "ok")),
                    ChildSpec("bad", _recorder(log, "bad", fail_times=20)),
                ],
            )
            await trio.sleep(30)
            assert log.count("start ok") == 1
            assert "stop ok" not in log
            nursery.cancel_scope.cancel()


async def test_supervisor_gives_up_when_intensity_is_exceeded(autojump_clock):
    sup = Supervisor("t", rng=random.Random(0), intensity=2, period=60, backoff_initial=0.01)
    with (
        trio.fail_after(60),
        pytest.RaisesGroup(
            pytest.RaisesExc(SupervisorGaveUp, match="3 failures"), flatten_subgroups=True
        ),
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run, [ChildSpec("bad", _recorder([], "bad", fail_times=100))])


async def test_temporary_child_is_not_restarted(autojump_clock):
    log: list[str] = []
    sup = Supervisor("t", rng=random.Random(0))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                sup.run,
                [ChildSpec("once", _recorder(log, "once", fail_times=5), Restart.TEMPORARY)],
            )
            await trio.sleep(5)
            assert log == ["start once", "stop once"]
            assert sup.child_ids() == []
            nursery.cancel_scope.cancel()


async def test_children_can_be_added_and_removed_while_running(autojump_clock):
    log: list[str] = []
    sup = Supervisor("t", rng=random.Random(0))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run, [])
            await sup.start_child(ChildSpec("x", _recorder(log, "x")))
            await sup.start_child(ChildSpec("y", _recorder(log, "y")))
            await sup.terminate_child("x")
            assert log == ["start x", "start y", "stop x"]
            assert sup.child_ids() == ["y"]
            with pytest.raises(ValueError, match="already running"):
                await sup.start_child(ChildSpec("y", _recorder(log, "y")))
            nursery.cancel_scope.cancel()

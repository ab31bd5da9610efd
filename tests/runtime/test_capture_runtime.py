"""Capture guarantees of the running collectors + writer (autojump clock, real files)."""

from __future__ import annotations

import pytest
import trio

from actors.capture import CaptureRuntime
from actors.codec import CAPTURE_EXT, PROG_EXT, iter_records

from .conftest import CountingSensor, Knobs, World, fresh_world


async def _run_for(world: World, plan, seconds: float, during=None) -> CaptureRuntime:
    runtime = CaptureRuntime(world.seams())
    with trio.fail_after(seconds + 600):
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run, plan)
            if during is not None:
                await during(runtime)
            await trio.sleep_until(trio.current_time() + seconds) if during is None else None
            nursery.cancel_scope.cancel()
    return runtime


async def test_every_tick_is_captured_once_at_the_configured_rate(world: World, autojump_clock):
    runtime = await _run_for(world, world.plan(world.collector("s", 10.0)), 10.0)
    seqs = world.seqs("s")
    # t = 0, 0.1, ..., 9.9 plus the tick at exactly 10.0 racing the stop: 100 or 101.
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) in (100, 101)
    assert runtime.collector_stats[("rdk:component:sensor", "s", "Readings")].missed_ticks == 0


async def test_shutdown_finishes_every_prog_as_capture(world: World, autojump_clock):
    await _run_for(world, world.plan(world.collector("a", 5.0), world.collector("b", 3.0)), 7.0)
    assert not list(world.root.rglob(f"*{PROG_EXT}"))
    assert world.seqs("a") == list(range(1, len(world.seqs("a")) + 1))
    assert len(world.seqs("b")) >= 21


async def test_binary_readings_become_one_file_each(world: World, autojump_clock):
    await _run_for(world, world.plan(world.collector("cam", 2.0, method="ReadImage")), 5.0)
    files = sorted(world.root.rglob(f"*{CAPTURE_EXT}"))
    assert len(files) >= 10
    payloads = [rec.binary for f in files for _, rec in iter_records(f)]
    assert len(payloads) == len(files)
    assert len(set(payloads)) == len(payloads)


async def test_tabular_files_rotate_at_the_size_limit(world: World, autojump_clock):
    await _run_for(world, world.plan(world.collector("s", 50.0, max_file_bytes=2_000)), 10.0)
    files = sorted(world.root.rglob(f"*{CAPTURE_EXT}"))
    assert len(files) > 5
    assert world.seqs("s") == list(range(1, len(world.seqs("s")) + 1))


async def test_tabular_files_rotate_at_the_age_limit(world: World, autojump_clock):
    await _run_for(world, world.plan(world.collector("s", 1.0, max_file_age_s=10.0)), 35.0)
    assert len(list(world.root.rglob(f"*{CAPTURE_EXT}"))) == 4


async def test_rotate_request_returns_once_open_files_are_durable_captures(
    world: World, autojump_clock
):
    async def during(runtime: CaptureRuntime):
        await trio.sleep(3)
        open_at_request = list(world.root.rglob(f"*{PROG_EXT}"))
        assert open_at_request
        await runtime.rotate()
        for prog in open_at_request:
            assert not prog.exists()
            assert prog.with_suffix(CAPTURE_EXT).exists()
        # t = 0 .. 2.9 at 10 Hz; the tick at exactly 3.0 may land on either side.
        assert len(world.seqs("s")) >= 29

    await _run_for(world, world.plan(world.collector("s", 10.0)), 0, during)


async def test_reconfigure_changes_rate_without_losing_or_duplicating_readings(
    world: World, autojump_clock
):
    async def during(runtime: CaptureRuntime):
        await trio.sleep(10)
        await runtime.apply(world.plan(world.collector("s", 20.0)))
        await trio.sleep(10)
        await runtime.apply(world.plan(world.collector("s", 5.0), world.collector("t", 1.0)))
        await trio.sleep(10)

    await _run_for(world, world.plan(world.collector("s", 10.0)), 0, during)
    seqs = world.seqs("s")
    assert seqs == list(range(1, CountingSensor.knobs["s"].calls + 1)), "lost or duplicated"
    # 10 s at 10 Hz + 10 s at 20 Hz + 10 s at 5 Hz, give or take the boundary ticks.
    assert 345 <= len(seqs) <= 353
    assert len(world.seqs("t")) in (10, 11)


async def test_unchanged_collectors_keep_running_across_a_reconfigure(world: World, autojump_clock):
    async def during(runtime: CaptureRuntime):
        await trio.sleep(5)
        await runtime.apply(world.plan(world.collector("a", 2.0), world.collector("b", 4.0)))
        await trio.sleep(5)

    runtime = await _run_for(
        world, world.plan(world.collector("a", 2.0), world.collector("b", 2.0)), 0, during
    )
    a_stats = runtime.collector_stats[("rdk:component:sensor", "a", "Readings")]
    # "a" was never restarted: one schedule from t=0, 2 Hz for 10 s.
    assert a_stats.captured in (20, 21)


async def test_failing_component_is_counted_and_others_keep_capturing(world: World, autojump_clock):
    CountingSensor.knobs["bad"] = Knobs(fail=True)
    runtime = await _run_for(
        world, world.plan(world.collector("bad", 5.0), world.collector("ok", 5.0)), 10.0
    )
    bad = runtime.collector_stats[("rdk:component:sensor", "bad", "Readings")]
    assert bad.errors >= 50
    assert "sensor unplugged" in bad.last_error
    assert len(world.seqs("ok")) >= 50


async def test_hanging_component_times_out_and_misses_ticks_without_bunching(
    tmp_path, autojump_clock
):
    world = fresh_world(tmp_path / "capture", "counting")  # only an own-task component can hang
    CountingSensor.knobs["slow"] = Knobs(hang=True)
    runtime = await _run_for(world, world.plan(world.collector("slow", 10.0, timeout_s=0.35)), 10.0)
    stats = runtime.collector_stats[("rdk:component:sensor", "slow", "Readings")]
    # Each call hangs 0.35 s: it takes 4 tick slots, so ~1 call per 0.4 s, 3 ticks missed each.
    assert 24 <= stats.timeouts <= 26
    assert (
        stats.missed_ticks == 3 * stats.timeouts
        or abs(stats.missed_ticks - 3 * stats.timeouts) <= 3
    )


async def test_full_disk_drops_and_counts_then_capture_resumes_by_itself(
    world: World, autojump_clock
):
    async def during(runtime: CaptureRuntime):
        await trio.sleep(5)
        world.fs.full = True
        await trio.sleep(20)
        world.fs.full = False
        await trio.sleep(40)  # the writer's backoff may wait up to 30 s

    runtime = await _run_for(
        world, world.plan(world.collector("s", 10.0, queue_size=16)), 0, during
    )
    stats = runtime.collector_stats[("rdk:component:sensor", "s", "Readings")]
    assert world.fs.failures > 0
    assert runtime.writer is not None
    assert runtime.writer.stats.io_errors > 0
    assert not runtime.writer.stats.retrying
    assert stats.dropped > 100
    seqs = world.seqs("s")
    # Nothing handed to the writer was lost or written twice; drops are the only gaps.
    assert len(seqs) == len(set(seqs)) == stats.captured
    assert seqs == sorted(seqs)
    assert stats.captured + stats.dropped == CountingSensor.knobs["s"].calls


@pytest.mark.slow
async def test_a_cohort_captures_all_its_members_from_one_timer(tmp_path, autojump_clock):
    world = fresh_world(tmp_path / "capture", "counting-nowait")
    names = [f"s{i}" for i in range(50)]

    async def during(runtime: CaptureRuntime):
        await trio.sleep(5)
        assert list(runtime._cohorts) == [100.0]  # one task for all 50 collectors
        fewer = [world.collector(n, 100.0) for n in names[:25]]
        await runtime.apply(world.plan(*fewer))
        await trio.sleep(5)

    plan = world.plan(*(world.collector(n, 100.0) for n in names))
    runtime = await _run_for(world, plan, 0, during)
    found = world.all_seqs()
    for name in names:
        seqs = found[name]
        assert seqs == list(range(1, CountingSensor.knobs[name].calls + 1))
        expected = 1000 if name in names[:25] else 500
        assert expected <= len(seqs) <= expected + 1, name
    stats = runtime.collector_stats[("rdk:component:sensor", "s0", "Readings")]
    assert stats.missed_ticks == 0
    assert stats.lateness.max == 0.0


async def test_a_paused_writer_drops_and_counts_readings_then_resumes(world: World, autojump_clock):
    """min_free_bytes: while paused nothing is written, every reading is counted, none is lost
    silently, and capture resumes by itself when the pause ends."""

    async def pause_for_a_while(runtime: CaptureRuntime) -> None:
        await trio.sleep(2.0)
        assert runtime.writer is not None
        runtime.writer.pause(True)
        await trio.sleep(3.0)
        runtime.writer.pause(False)
        await trio.sleep(2.0)

    runtime = await _run_for(world, world.plan(world.collector("s", 10.0)), 0, pause_for_a_while)
    assert runtime.writer is not None
    dropped = runtime.writer.stats.dropped_paused
    seqs = world.seqs("s")
    stats = runtime.collector_stats[("rdk:component:sensor", "s", "Readings")]
    assert 25 <= dropped <= 35
    assert len(seqs) + dropped + stats.dropped == stats.captured
    assert seqs[-1] == stats.captured  # capture resumed after the pause

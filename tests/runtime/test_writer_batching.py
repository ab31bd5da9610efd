"""The writer batches readings that keep coming, and writes a lone reading at once."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import trio

from actors.adapters.os_fs import OsFileSystem
from actors.capture_store import CaptureStore
from actors.messages import CaptureMsg, InflightGauge, WriterMsg
from actors.writer import BATCH_WINDOW_S, Writer

from .conftest import TrioWallClock, World, fresh_world

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class TimedRunner:
    """Runs the store inline and notes when each batch was written."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def run(self, fn: Callable[..., object], *args: object) -> object:
        if getattr(fn, "__name__", "") == "process":
            self.calls.append(trio.current_time())
        result = fn(*args)
        await trio.lowlevel.checkpoint()
        return result


async def _run_writer(world: World, feed: Callable[..., object]) -> tuple[TimedRunner, int]:
    send, receive = trio.open_memory_channel[WriterMsg](10_000)
    store = CaptureStore(OsFileSystem(), fsync_interval_s=1e9)
    runner = TimedRunner()
    writer = Writer(receive, store, runner, TrioWallClock(), random.Random(1))
    stream = world.collector("s", 1.0).stream()
    gauge = InflightGauge(10_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await feed(send, stream, gauge)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    return runner, store.stats.records_written


def _msg(stream, gauge: InflightGauge, seq: int) -> CaptureMsg:
    gauge.inflight += 1
    return CaptureMsg(stream, gauge, seq, seq, {"readings": {"seq": seq}})


async def test_a_reading_after_a_quiet_spell_is_written_at_once(tmp_path: Path, autojump_clock):
    async def feed(send, stream, gauge) -> None:
        for seq, at in enumerate((5.0, 10.0, 15.0)):
            await trio.sleep_until(at)
            send.send_nowait(_msg(stream, gauge, seq))

    runner, written = await _run_writer(fresh_world(tmp_path, "counting"), feed)
    assert written == 3
    assert runner.calls[:3] == [5.0, 10.0, 15.0], "a lone reading waited for a batch window"


async def test_readings_that_keep_coming_are_batched(tmp_path: Path, autojump_clock):
    async def feed(send, stream, gauge) -> None:
        for seq in range(200):  # one every 2 ms for 0.4 s
            send.send_nowait(_msg(stream, gauge, seq))
            await trio.sleep(0.002)

    runner, written = await _run_writer(fresh_world(tmp_path, "counting"), feed)
    assert written == 200
    # One write per window while they keep coming (plus the first, written at once).
    windows = 0.4 / BATCH_WINDOW_S
    assert len(runner.calls) <= windows + 2, runner.calls

"""A cohort sends each tick's readings to the writer as one message, and accounts for a refusal."""

from __future__ import annotations

from pathlib import Path

import trio

from actors.capture_sink import CaptureSink
from actors.cohort import Cohort, CohortMember
from actors.collector import CollectorStats
from actors.components import Tabular
from actors.messages import CaptureBatch, CaptureMsg, InflightGauge, StreamSpec, WriterMsg

from .conftest import TrioWallClock


def _member(
    name: str, outbox: trio.MemorySendChannel[WriterMsg], gauge: InflightGauge
) -> tuple[tuple[str, str, str], CohortMember]:
    key = ("rdk:component:sensor", name, "Readings")
    spec = StreamSpec(key, Path("/unused") / name, b"", False, 1 << 20, 60.0, 4096)
    sink = CaptureSink(spec, "Readings", outbox, gauge, CollectorStats())
    return key, CohortMember("Readings", {}, lambda _m, _p: Tabular({"name": name}), sink)


def _cohort(
    send: trio.MemorySendChannel[WriterMsg], size: int
) -> tuple[Cohort, list[CohortMember], list[InflightGauge]]:
    """A 10 Hz cohort of ``size`` sensors ``s0``... sending to ``send``, each with its gauge."""
    cohort = Cohort(10.0, TrioWallClock(), send)
    gauges = [InflightGauge(5) for _ in range(size)]
    members = []
    for i, gauge in enumerate(gauges):
        key, member = _member(f"s{i}", send, gauge)
        cohort.add(key, member)
        members.append(member)
    return cohort, members, gauges


async def _one_tick(cohort: Cohort) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cohort.run)  # the first tick is immediate
        await trio.sleep(0.5 / cohort.frequency_hz)  # and the second not yet due
        nursery.cancel_scope.cancel()


async def test_one_tick_of_every_member_reaches_the_writer_as_one_message(autojump_clock):
    send, receive = trio.open_memory_channel[WriterMsg](10)
    cohort, members, gauges = _cohort(send, 3)
    await _one_tick(cohort)
    batch = receive.receive_nowait()
    assert isinstance(batch, CaptureBatch)
    assert [m.data for m in batch.msgs] == [{"readings": {"name": f"s{i}"}} for i in range(3)]
    assert all(isinstance(m, CaptureMsg) for m in batch.msgs)
    assert [g.inflight for g in gauges] == [1, 1, 1]
    assert [m.sink.stats.captured for m in members] == [1, 1, 1]


async def test_a_tick_the_mailbox_refuses_is_dropped_and_counted_per_collector(autojump_clock):
    send, _receive = trio.open_memory_channel[WriterMsg](0)  # no receiver waiting: refused
    cohort, members, gauges = _cohort(send, 2)
    await _one_tick(cohort)
    assert [g.inflight for g in gauges] == [0, 0]
    stats = [m.sink.stats for m in members]
    assert [(s.captured, s.dropped, s.ticks) for s in stats] == [(0, 1, 1), (0, 1, 1)]


async def test_a_removed_member_no_longer_gathers_into_the_tick(autojump_clock):
    send, receive = trio.open_memory_channel[WriterMsg](10)
    cohort = Cohort(10.0, TrioWallClock(), send)
    key, member = _member("s0", send, InflightGauge(5))
    cohort.add(key, member)
    cohort.remove(key)
    assert member.sink.tick is None
    member.sink.emit(1, 2, Tabular({"x": 1.0}))  # a sink on its own sends at once
    assert isinstance(receive.receive_nowait(), CaptureMsg)

"""CaptureStore timing guarantees that do not need a running writer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.adapters.os_fs import OsFileSystem
from actors.capture_store import CaptureStore
from actors.messages import CaptureMsg, InflightGauge

if TYPE_CHECKING:
    from .conftest import World

WALL = 1_763_000_000_000_000_000
# Floats where `(t + 10.0) - t < 10.0`: the old due-tests were false at their own deadline.
T_AGE = 0.1 * 64  # 6.4000000000000004
T_SYNC = 0.1 * 104  # 10.4


def _store_with_one_reading(world: World, now: float, *, age: float, fsync: float) -> CaptureStore:
    store = CaptureStore(OsFileSystem(), fsync_interval_s=fsync)
    stream = world.collector("s", 1.0, max_file_age_s=age).stream()
    store.enqueue(CaptureMsg(stream, InflightGauge(10), 1, 2, {"readings": {"x": 1}}))
    store.process(now=now, wall_ns=WALL)
    return store


def test_a_file_due_at_its_age_deadline_is_rotated_then(world: World):
    """Regression: a file not rotated at its own deadline left the writer waking at the
    same instant forever (a hang seen in CI)."""
    store = _store_with_one_reading(world, T_AGE, age=10.0, fsync=1e9)
    due = store.next_deadline(T_AGE)
    assert due == T_AGE + 10.0
    store.process(now=due, wall_ns=WALL)
    assert len(store.finished) == 1, "not rotated at its own deadline"
    assert store.next_deadline(due) == float("inf")


def test_the_fsync_deadline_moves_on_once_it_is_reached(world: World):
    store = _store_with_one_reading(world, T_SYNC, age=1e9, fsync=10.0)
    due = store.next_deadline(T_SYNC)
    assert due == T_SYNC + 10.0
    store.process(now=due, wall_ns=WALL)
    assert store.next_deadline(due) > due, "the fsync stayed due: the writer would spin"

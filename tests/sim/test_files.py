"""Arbitrary files in the simulator: dropped by another program, checked like readings."""

from __future__ import annotations

import os
import random
from collections import Counter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import trio
import trio.testing

from sim.checker import Checker
from sim.conditions import Conditions
from sim.files import FILE_KEY_PREFIX, NOTES_DIR, FileDropper
from sim.robot import Production
from sim.trace import Trace
from sim.world import EPOCH0_NS, SimConfig, SimWallClock, run

if TYPE_CHECKING:
    from pathlib import Path


def _network() -> Any:
    """The network's books the checker reads: nothing sent, nothing finished."""
    return SimpleNamespace(finished=set(), sent=Counter(), interruptions=Counter(), labels={})


def _drop_one(capture_dir: Path, checker: Checker) -> Path:
    clock = SimWallClock(EPOCH0_NS)
    clock.jump(42.0)
    production = Production(Conditions(), random.Random(1))
    dropper = FileDropper(capture_dir, clock, random.Random(2), checker, production, Trace(float))
    dropper._drop()
    [path] = (capture_dir / NOTES_DIR).iterdir()
    return path


def test_a_dropped_file_is_named_by_its_first_line_and_dated_by_the_simulated_clock(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture"
    capture.mkdir()
    checker = Checker(Trace(float), _network(), 1 << 20)

    async def main() -> Path:
        return _drop_one(capture, checker)  # the simulated clock reads Trio's

    path = trio.run(main, clock=trio.testing.MockClock())
    assert path.read_bytes().startswith(f"{FILE_KEY_PREFIX}1\n".encode())
    assert os.stat(path).st_mtime_ns == EPOCH0_NS + 42 * 10**9
    assert list(checker.books.captured) == [f"{FILE_KEY_PREFIX}1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]  # no temp file left


def test_a_dropped_file_the_cloud_never_stored_is_a_loss(tmp_path: Path) -> None:
    async def main() -> list[str]:
        checker = Checker(Trace(float), _network(), 1 << 20)
        _drop_one(tmp_path, checker)
        checker.judge(Counter(), [])
        return [v.guarantee + ": " + v.message for v in checker.violations]

    [violation] = trio.run(main)
    assert violation.startswith("1 no loss")
    assert f"{FILE_KEY_PREFIX}1" in violation


def test_a_dropped_file_deleted_before_the_cloud_confirmed_it_is_a_violation(
    tmp_path: Path,
) -> None:
    async def main() -> list[str]:
        checker = Checker(Trace(float), _network(), 1 << 20)
        path = _drop_one(tmp_path, checker)
        checker.removing(path)
        checker.judge(Counter({f"{FILE_KEY_PREFIX}1": 1}), [])
        return [v.guarantee for v in checker.violations]

    assert trio.run(main) == ["3 delete after confirm"]


def test_files_dropped_in_a_world_with_faults_reach_the_cloud_exactly_once() -> None:
    report = run(SimConfig(seed=1, hours=1.0))
    assert report.extra["files_dropped"] >= 1
    assert report.ok, report.violations
    assert (report.tally.lost, report.tally.duplicated) == (0, 0)

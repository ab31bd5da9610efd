"""Another program on the robot that drops arbitrary files into the capture dir.

Ferry syncs such files too, once unmodified for ``file_last_modified_millis``
(issue 5), through the same state machine as capture files but as one blob each.
Each file starts with its key line (``file:note#N``), as a simulated image does,
so the checker counts files and readings alike: captured once, stored once,
deleted only after the cloud confirmed it. The producer writes like a careful
program: a temp file outside the capture dir, fsync, then rename in; its mtime
is the simulated wall clock, which the sync actor's readiness rule reads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NoReturn, final

import trio

if TYPE_CHECKING:
    import random
    from pathlib import Path

    from sim.checker import Checker
    from sim.robot import Production
    from sim.trace import Trace
    from sim.world import SimWallClock

NOTES_DIR = "notes"
FILE_KEY_PREFIX = "file:note#"
MEAN_INTERVAL_S = 900.0
"""A file about every 15 simulated minutes."""
MAX_BODY_BYTES = 8192


@final
class FileDropper:
    """Drops ``note-N.txt`` files into ``capture_dir/notes`` at random times.

    Example::

        dropper = FileDropper(capture_dir, clock, rng, checker, production, trace)
        nursery.start_soon(dropper.run)
    """

    def __init__(
        self,
        capture_dir: Path,
        clock: SimWallClock,
        rng: random.Random,
        checker: Checker,
        production: Production,
        trace: Trace,
    ) -> None:
        self._dir = capture_dir / NOTES_DIR
        self._tmp = capture_dir.parent
        self._clock = clock
        self._rng = rng
        self._checker = checker
        self._production = production
        self._trace = trace
        self.dropped = 0

    async def run(self) -> NoReturn:
        """Drops files until cancelled; none while production is off (the heal)."""
        while True:
            await trio.sleep(self._rng.expovariate(1.0 / MEAN_INTERVAL_S))
            if self._production.on:
                self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        n = self.dropped
        key = f"{FILE_KEY_PREFIX}{n}"
        body = key.encode() + b"\n" + self._rng.randbytes(self._rng.randint(0, MAX_BODY_BYTES))
        self._dir.mkdir(exist_ok=True)
        tmp = self._tmp / f".note-{n}.tmp"
        path = self._dir / f"note-{n}.txt"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        now_ns = self._clock.now_ns()
        os.utime(tmp, ns=(now_ns, now_ns))
        os.replace(tmp, path)
        self._checker.dropped(path, key)
        self._trace.event("files", f"drop {self._checker.rel(path)} ({len(body)} B)")

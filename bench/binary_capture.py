"""Binary capture of 1 MiB images through the real capture runtime, next to ``dd`` (issue 8 #2).

Ferry: a camera that answers ``ReadImage`` at once with the same 1 MiB payload,
captured by the production ``CaptureRuntime`` (cohort, mailbox, writer thread,
``OsFileSystem``) as fast as the writer takes readings; the writer writes each
binary reading as its own file: create, write, fsync, rename to ``.capture``,
fsync the directory. The figure is payload MiB/s over ``files`` finished files,
after a warm-up.

Reference: ``dd if=<the payload> of=<dir>/dd-<i> bs=1M conv=fsync`` once per file,
the same number of files, on the same file system; run before and after Ferry,
and the two runs averaged, so a change in machine load between them cancels.

Run: python -m bench.binary_capture [--files N] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from actors.adapters.clock import SystemWallClock
from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import ThreadRunner
from actors.capture import CaptureRuntime, CaptureSeams
from actors.components import Binary, ResourceName
from actors.components._registry import Registry
from actors.plan import CapturePlan, CollectorPlan, ComponentPlan
from actors.run_cmd import tune_agent_process
from bench.common import MIB

CAMERA = "rdk:component:camera"
WARMUP_FILES = 8
CAPTURE_HZ = 1000.0
"""Faster than any disk takes 1 MiB files: the writer, not the schedule, sets the pace."""
QUEUE = 16
"""Readings in flight between the camera and the writer (16 MiB)."""


@dataclass(frozen=True)
class BinaryResult:
    """Ferry's and dd's payload MiB/s over the same number of 1 MiB files."""

    files: int
    ferry_mib_s: float
    dd_mib_s: float
    dd_runs: tuple[float, ...]
    dropped: int
    dd_spawn_ms: float
    """Wall time of one ``dd`` that copies nothing: the per-file process cost in ``dd_mib_s``."""


class InstantCamera:
    """Answers ``ReadImage`` at once with the same payload (no encoding: disk is measured)."""

    def __init__(self, payload: bytes) -> None:
        self._frame = [Binary(payload, "image/jpeg")]

    def capture_methods(self) -> frozenset[str]:
        """The one method it captures."""
        return frozenset({"ReadImage"})

    def nowait_methods(self) -> frozenset[str]:
        """Answered inline by a cohort."""
        return frozenset({"ReadImage"})

    def capture_nowait(self, method: str, params: object) -> list[Binary]:
        """The frame, at once."""
        return self._frame

    async def capture(self, method: str, params: object) -> list[Binary]:
        """The frame, at once."""
        return self._frame

    async def aclose(self) -> None:
        """Nothing to close."""


def _plan(root: Path) -> CapturePlan:
    """One camera, ``ReadImage`` at ``CAPTURE_HZ``, into ``root``."""
    resource = ResourceName(CAMERA, "cam", "instant")
    cp = CollectorPlan(
        resource,
        "ReadImage",
        CAPTURE_HZ,
        root,
        params={"mime_type": "image/jpeg"},
        queue_size=QUEUE,
    )
    return CapturePlan(
        components={resource.name: ComponentPlan(resource)},
        collectors={cp.key: cp},
        capture_dirs=frozenset({root}),
    )


class FinishedClock:
    """Counts finished files (the writer's ``on_finished``) and times the ones after warm-up."""

    def __init__(self, files: int) -> None:
        self._target = WARMUP_FILES + files
        self.finished = 0
        self.t0 = 0.0
        self.t1 = 0.0
        self.done = trio.Event()

    def __call__(self, paths: list[Path]) -> None:
        """Called by the writer, in Trio, with the files it just finished."""
        before, self.finished = self.finished, self.finished + len(paths)
        now = time.perf_counter()
        if before < WARMUP_FILES <= self.finished:
            self.t0 = now
            self._target = self.finished + (self._target - WARMUP_FILES)
        if self.finished >= self._target and not self.done.is_set():
            self.t1 = now
            self.done.set()


async def _capture(root: Path, payload: bytes, files: int) -> tuple[float, int]:
    """Seconds the runtime took to finish ``files`` binary files after warm-up; readings dropped."""
    registry = Registry()
    registry.register(CAMERA, "instant", lambda ctx: InstantCamera(payload))
    clock = FinishedClock(files)
    seams = CaptureSeams(
        registry=registry,
        clock=SystemWallClock(),
        runner=ThreadRunner(),
        fs=OsFileSystem(),
        rng=random.Random(0),
        on_finished=clock,
    )
    runtime = CaptureRuntime(seams)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, _plan(root))
        await clock.done.wait()
        nursery.cancel_scope.cancel()
    dropped = sum(s.dropped for s in runtime.collector_stats.values())
    return clock.t1 - clock.t0, dropped


def ferry_capture(root: Path, payload: bytes, files: int) -> tuple[float, int]:
    """Ferry's payload MiB/s over ``files`` files written into ``root``, and readings dropped."""
    seconds, dropped = trio.run(_capture, root, payload, files)
    return files * len(payload) / MIB / seconds, dropped


def dd_capture(directory: Path, source: Path, files: int) -> float:
    """``dd``'s MiB/s writing ``source`` ``files`` times with fsync, one process per file."""
    directory.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    t0 = time.perf_counter()
    for i in range(files):
        subprocess.run(
            [
                "dd",
                f"if={source}",
                f"of={directory / f'dd-{i}'}",
                "bs=1M",
                "conv=fsync",
                "status=none",
            ],
            check=True,
        )
    return files * size / MIB / (time.perf_counter() - t0)


def dd_spawn_ms(runs: int = 50) -> float:
    """Milliseconds one ``dd`` process takes when it copies nothing."""
    t0 = time.perf_counter()
    for _ in range(runs):
        subprocess.run(["dd", "if=/dev/null", "of=/dev/null", "status=none"], check=True)
    return (time.perf_counter() - t0) / runs * 1e3


def measure(root: Path, files: int) -> BinaryResult:
    """dd, Ferry, dd again, on the same payload and file system under ``root``."""
    if shutil.which("dd") is None:
        raise RuntimeError("dd not found")
    tune_agent_process()  # what `ferry run` does
    payload = os.urandom(MIB)
    source = root / "payload.bin"
    source.write_bytes(payload)
    runs: list[float] = []
    ferry = 0.0
    dropped = 0
    for step in ("dd", "ferry", "dd"):
        target = root / step
        if step == "dd":
            runs.append(dd_capture(target, source, files))
        else:
            ferry, dropped = ferry_capture(target, payload, files)
        shutil.rmtree(target)
    return BinaryResult(files, ferry, sum(runs) / len(runs), tuple(runs), dropped, dd_spawn_ms())


def main() -> None:
    """Prints Ferry's and dd's MiB/s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=256, help="1 MiB files per run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-bin-", dir=args.dir) as tmp:
        r = measure(Path(tmp), args.files)
    dd_runs = ", ".join(f"{x:,.0f}" for x in r.dd_runs)
    print(f"binary capture, {r.files} x 1 MiB files, fsync + rename per file")
    print(f"  Ferry capture runtime: {r.ferry_mib_s:,.0f} MiB/s ({r.dropped} readings dropped)")
    print(f"  dd conv=fsync:         {r.dd_mib_s:,.0f} MiB/s (runs: {dd_runs})")
    print(f"  one empty dd process:  {r.dd_spawn_ms:.1f} ms (included in dd's time, per file)")
    print(f"  ratio:                 {r.ferry_mib_s / r.dd_mib_s:.2f}x (goal >= 0.8x)")


if __name__ == "__main__":
    main()

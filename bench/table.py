"""`make bench`: every issue-8 metric once, in one process tree, printed as one table.

The driver runs each part in a fresh child process (``python -m bench --part
NAME``), so one part's memory or threads never colour another's RSS or CPU
figures, a part that crashes or hangs costs only its own rows, and the whole
run stays one process tree on one machine. Within a part, every reference
(``dd``, a raw grpclib stream, ``rsync``, a whole-file retry) is measured right
beside Ferry on the same files and disk, so machine noise cancels in the ratio.

Run: python -m bench [--dir D] [--only NAME,...]   (the table goes to stdout)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import DASH, MIB, Row, failed_row, machine, ratio_text, repeated

if TYPE_CHECKING:
    from collections.abc import Callable

MARKER = "BENCH-ROWS "
FLEET_SECONDS = 60.0
THROUGHPUT_SECONDS = 10.0
CODEC_READINGS = 300_000
BINARY_CAPTURE_FILES = 256
SYNC_FILES, SYNC_FILE_MIB, SYNC_THREADS = 4, 64, 4
CLOUD_FILES, CLOUD_READINGS, CLOUD_PARALLEL = 4, 50_000, 4
CLOUD_RUNS = SYNC_RUNS = 3  # judged on the median: one run swings ±20 % here
RESUME_FILE_MIB, RESUME_KILL_AFTER = 32, 16
BACKLOG_SMALL, BACKLOG_LARGE, BACKLOG_READINGS, BACKLOG_COLLECTORS = 100, 10_000, 20, 4
BACKLOG_GOAL_READINGS_S = 50_000  # issue 5: the small-file backlog's drain rate
SIM_HOURS = 6.0
AGENT_STARTS, AGENT_SETTLE_S, AGENT_IDLE_S = 3, 5.0, 20.0


def _attempt(rows: list[Row], metric: str, goal: str, fn: Callable[[], list[Row]]) -> None:
    """Appends ``fn``'s rows, or one row with its error: a failure never stops the others."""
    try:
        rows.extend(fn())
    except Exception as exc:
        traceback.print_exc()
        rows.append(failed_row(metric, f"{type(exc).__name__}: {exc}", goal))


# ----------------------------------------------------------------- the parts (child side)


def part_tabular(root: Path) -> list[Row]:
    """#1: readings/s from collectors to finished files through the runtime; the codec alone."""
    from actors.run_cmd import tune_agent_process
    from bench import capture, codec

    logging.basicConfig(level=logging.ERROR)
    tune_agent_process()
    rows: list[Row] = []
    goal = ">= 100,000 readings/s"
    metric = "1. tabular capture, collectors -> finished files (100 x 1 kHz, one process)"

    def runtime() -> list[Row]:
        rate, cores, missed = capture.throughput(root / "runtime", THROUGHPUT_SECONDS)
        text = f"{rate:,.0f} readings/s at {cores:.2f} core ({missed:.0f} % ticks missed)"
        return [Row(metric, text, goal=goal, met=rate >= 100_000)]

    def codec_only() -> list[Row]:
        rate = codec.tabular(root / "codec", CODEC_READINGS)
        text = f"{rate:,.0f} readings/s"
        return [Row("1b. (info) the codec alone, reading -> finished file, one core", text)]

    _attempt(rows, metric, goal, runtime)
    _attempt(rows, "1b. (info) the codec alone", DASH, codec_only)
    return rows


def part_binary_capture(root: Path) -> list[Row]:
    """#2: 1 MiB images through the capture runtime vs dd conv=fsync, same files and disk."""
    from bench import binary_capture

    metric = "2. binary capture, 1 MiB images, fsync + rename per file"
    goal = ">= 0.8x dd"

    def run() -> list[Row]:
        r = binary_capture.measure(root, BINARY_CAPTURE_FILES)
        ratio = r.ferry_mib_s / r.dd_mib_s
        print(
            f"  binary capture: {r.files} files per run; dd runs "
            + ", ".join(f"{x:,.0f}" for x in r.dd_runs)
            + f" MiB/s (incl. {r.dd_spawn_ms:.1f} ms to start each dd); Ferry dropped "
            + f"{r.dropped} readings (the camera outpaces the disk)"
        )
        return [
            Row(
                metric,
                f"{r.ferry_mib_s:,.0f} MiB/s",
                f"dd conv=fsync {r.dd_mib_s:,.0f} MiB/s",
                ratio_text(ratio),
                goal,
                ratio >= 0.8,
            )
        ]

    rows: list[Row] = []
    _attempt(rows, metric, goal, run)
    return rows


def part_fleet(root: Path) -> list[Row]:
    """#3: 100 collectors x 100 Hz for 60 s: ticks, lateness, CPU, RSS."""
    from actors.run_cmd import tune_agent_process
    from bench import capture

    logging.basicConfig(level=logging.ERROR)
    tune_agent_process()
    prefix = f"3. 100 collectors x 100 Hz, {FLEET_SECONDS:g} s"

    def run() -> list[Row]:
        f = capture.fleet(root, FLEET_SECONDS)
        return [
            Row(
                f"{prefix}: ticks captured",
                f"{f['ticks_pct']:.2f} % ({f['dropped']:.0f} dropped)",
                goal=">= 99.9 %",
                met=f["ticks_pct"] >= 99.9,
            ),
            Row(
                "3b. ... tick lateness (jitter) p50 / p99",
                f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms",
                goal="p99 <= 2 ms",
                met=f["p99_ms"] <= 2.0,
            ),
            Row(
                "3c. ... CPU share",
                f"{f['cpu_cores']:.2f} core",
                goal="<= 0.6 core",
                met=f["cpu_cores"] <= 0.6,
            ),
            Row(
                "3d. ... RSS (whole process)",
                f"{f['rss_mb']:.0f} MB",
                goal="<= 80 MB",
                met=f["rss_mb"] <= 80,
            ),
        ]

    rows: list[Row] = []
    _attempt(rows, f"{prefix}: ticks captured", ">= 99.9 %", run)
    return rows


def part_sync_binary(root: Path) -> list[Row]:
    """#4: SyncActor on large binary files vs a raw grpclib stream and vs an rsync daemon."""
    from actors.config import DEFAULT_SYNC_CHUNK_BYTES
    from actors.run_cmd import tune_agent_process
    from bench import rsync_ref
    from bench import sync as bsync

    tune_agent_process()  # this process runs the sync actor, as `ferry run` would

    chunk = DEFAULT_SYNC_CHUNK_BYTES  # what `ferry run` sends unless configured otherwise
    name = f"{SYNC_FILES} x {SYNC_FILE_MIB} MiB, {SYNC_THREADS} workers, {chunk // MIB} MiB chunks"
    metric_raw = f"4. sync of large binary files ({name}) vs raw grpclib stream"
    metric_rsync = "4b. ... same files vs rsync daemon over loopback (--fsync)"
    rsync: dict[str, float | str] = {}

    def with_rsync(paths: list[Path]) -> None:
        """rsync's turn on exactly the files Ferry then uploads."""
        try:
            rsync["mib_s"] = rsync_ref.rsync_mib_s(paths, root)
        except Exception as exc:
            rsync["error"] = (
                "rsync unavailable" if not rsync_ref.available() else f"rsync failed: {exc}"
            )

    def run() -> list[Row]:
        results = repeated(
            lambda d: bsync.binary_sync(
                d,
                files=SYNC_FILES,
                file_mib=SYNC_FILE_MIB,
                threads=SYNC_THREADS,
                chunk=chunk,
                beside=None if rsync else with_rsync,  # rsync's turn in the first run only
            ),
            root,
            SYNC_RUNS,
        )
        # Each run's ratio is of its own raw stream (same bytes, same run); the goal is
        # judged on their median, since one run swings ±20 % here.
        ratios = [r.ferry_mib_s / r.raw_mib_s for r in results]
        ratio = statistics.median(ratios)
        first = results[0]
        mid = results[ratios.index(ratio)] if ratio in ratios else first
        runs = ", ".join(ratio_text(x) for x in ratios)
        rows = [
            Row(
                metric_raw,
                f"{mid.ferry_mib_s:,.0f} MiB/s",
                f"raw grpclib {mid.raw_mib_s:,.0f} MiB/s",
                f"{ratio_text(ratio)} (median of {runs})",
                ">= 0.8x",
                ratio >= 0.8,
            )
        ]
        rate = rsync.get("mib_s")
        if isinstance(rate, float):
            rows.append(
                Row(
                    metric_rsync,
                    f"{first.ferry_mib_s:,.0f} MiB/s",
                    f"rsync {rate:,.0f} MiB/s",
                    ratio_text(first.ferry_mib_s / rate),
                    "reported",
                )
            )
        else:
            rows.append(
                Row(
                    metric_rsync,
                    f"{first.ferry_mib_s:,.0f} MiB/s",
                    str(rsync.get("error", "rsync not run")),
                )
            )
        return rows

    rows: list[Row] = []
    _attempt(rows, metric_raw, ">= 0.8x", run)
    return rows


def part_cloud(root: Path) -> list[Row]:
    """#5: tabular readings committed per second by one `ferry cloud serve` process."""
    from bench import cloud

    metric = (
        f"5. cloud ingest, tabular ({CLOUD_FILES} files x {CLOUD_READINGS:,} readings, "
        f"{CLOUD_PARALLEL} in flight), one server process"
    )
    goal = ">= 50,000 readings/s"

    def run() -> list[Row]:
        rates = repeated(
            lambda d: cloud.tabular_ingest(d, CLOUD_FILES, CLOUD_READINGS, CLOUD_PARALLEL),
            root,
            CLOUD_RUNS,
        )
        rate = statistics.median(rates)
        runs = ", ".join(f"{r:,.0f}" for r in rates)
        text = f"{rate:,.0f} readings/s (median of {runs})"
        return [Row(metric, text, goal=goal, met=rate >= 50_000)]

    rows: list[Row] = []
    _attempt(rows, metric, goal, run)
    return rows


def part_resume(root: Path) -> list[Row]:
    """#6: bytes re-sent after the server dies mid-chunk, vs a whole-file retry."""
    from bench import resume

    metric = (
        f"6. bytes re-sent after an interruption mid-file ({RESUME_FILE_MIB} MiB file, "
        f"server killed during chunk {RESUME_KILL_AFTER + 1})"
    )
    goal = "<= 1 chunk (1 MiB)"

    def run() -> list[Row]:
        r = resume.measure(root, file_mib=RESUME_FILE_MIB, chunk=MIB, kill_after=RESUME_KILL_AFTER)
        ref = r.whole_file_resent
        return [
            Row(
                metric,
                f"{r.ferry_resent:,} B",
                f"whole-file retry {ref:,} B",
                ratio_text(r.ferry_resent / ref) if ref else DASH,
                goal,
                r.ferry_resent <= r.chunk,
            )
        ]

    rows: list[Row] = []
    _attempt(rows, metric, goal, run)
    return rows


def part_backlog(root: Path) -> list[Row]:
    """#7: peak RSS draining a 10,000-file backlog vs a 100-file one (and the drain rate)."""
    from actors.run_cmd import tune_agent_process
    from bench import sync as bsync

    tune_agent_process()  # this process runs the sync actor, as `ferry run` would

    threads = max(1, (os.cpu_count() or 1) // 2)
    metric = f"7. sync peak RSS, {BACKLOG_LARGE:,}-file backlog vs {BACKLOG_SMALL}-file"
    goal = "flat"

    def run() -> list[Row]:
        r = bsync.rss_flat(
            root,
            small=BACKLOG_SMALL,
            large=BACKLOG_LARGE,
            readings=BACKLOG_READINGS,
            collectors=BACKLOG_COLLECTORS,
            threads=threads,
        )
        files_s = BACKLOG_LARGE / r.large.seconds
        return [
            Row(
                metric,
                f"{r.large.peak_rss / MIB:,.1f} MiB",
                f"{BACKLOG_SMALL} files: {r.small.peak_rss / MIB:,.1f} MiB",
                f"{r.diff / MIB:+,.1f} MiB ({r.per_file:+,.0f} B/file)",
                f"flat (<= +{r.allowance / MIB:g} MiB)",
                r.flat,
            ),
            Row(
                "7b. ... drain rate of that backlog "
                f"({BACKLOG_READINGS} readings/file, {threads} worker)",
                f"{r.readings_per_s:,.0f} readings/s ({files_s:,.0f} files/s)",
                goal=f">= {BACKLOG_GOAL_READINGS_S:,} readings/s",
                met=r.readings_per_s >= BACKLOG_GOAL_READINGS_S,
            ),
        ]

    rows: list[Row] = []
    _attempt(rows, metric, goal, run)
    return rows


def part_sim(root: Path) -> list[Row]:
    """#8: simulated seconds per wall second, 10 collectors, every fault kind."""
    from bench import sim

    metric = f"8. simulator speed, 10 collectors with faults ({SIM_HOURS:g} h world)"
    goal = ">= 1,000x"

    def run() -> list[Row]:
        report = sim.speed(SIM_HOURS)
        verdict = "ok" if report.ok else f"{len(report.violations)} violations"
        print(
            f"  sim: {report.simulated_s / 3600:.2f} h simulated in {report.wall_s:.1f} s; "
            f"{report.tally.captured:,} readings, {sum(report.faults.values())} faults; "
            f"checker {verdict}"
        )
        ok = report.speedup >= 1000 and report.ok
        return [Row(metric, f"{report.speedup:,.0f}x real time", goal=goal, met=ok)]

    rows: list[Row] = []
    _attempt(rows, metric, goal, run)
    return rows


def part_agent(root: Path) -> list[Row]:
    """#9: `ferry run` with 10 sensors at 1 Hz: idle CPU, and cold start to first capture."""
    from bench import agent

    metric_cpu = f"9. idle CPU, `ferry run` with 10 collectors at 1 Hz ({AGENT_IDLE_S:g} s)"
    metric_start = "9b. cold start, spawn -> first reading on disk"

    def run() -> list[Row]:
        r = agent.measure(root, starts=AGENT_STARTS, settle=AGENT_SETTLE_S, seconds=AGENT_IDLE_S)
        starts = ", ".join(f"{s:.2f}" for s in r.starts)
        print(
            f"  agent: cold starts {starts} s (Ferry's packages byte-compiled first); "
            f"RSS {r.rss_mb:.0f} MB while idle"
        )
        return [
            Row(
                metric_cpu,
                f"{r.idle_cpu_pct:.2f} % of a core",
                goal="<= 1 %",
                met=r.idle_cpu_pct <= 1.0,
            ),
            Row(
                f"{metric_start} (median of {len(r.starts)})",
                f"{r.cold_start_s:.2f} s",
                goal="<= 1 s",
                met=r.cold_start_s <= 1.0,
            ),
        ]

    rows: list[Row] = []
    _attempt(rows, metric_cpu, "<= 1 %", run)
    return rows


@dataclass(frozen=True)
class Part:
    """One child process's worth of metrics."""

    name: str
    run: Callable[[Path], list[Row]]
    timeout_s: float


PARTS: tuple[Part, ...] = (
    Part("tabular", part_tabular, 180),
    Part("binary-capture", part_binary_capture, 240),
    Part("fleet", part_fleet, 240),
    Part("sync-binary", part_sync_binary, 540),
    Part("cloud", part_cloud, 300),
    Part("resume", part_resume, 180),
    Part("backlog", part_backlog, 720),
    Part("sim", part_sim, 480),
    Part("agent", part_agent, 240),
)


def run_part(name: str, root: Path) -> None:
    """The child: runs one part in a temp dir under ``root`` and prints its rows as JSON."""
    part = next(p for p in PARTS if p.name == name)
    with tempfile.TemporaryDirectory(prefix=f"ferry-bench-{name}-", dir=root) as tmp:
        rows = part.run(Path(tmp))
    sys.stdout.flush()
    print(MARKER + json.dumps([dataclasses.asdict(r) for r in rows]), flush=True)


# ----------------------------------------------------------------- the driver (parent side)


@dataclass
class Outcome:
    """What one child produced: its rows, its detail lines, its wall time."""

    part: str
    rows: list[Row]
    details: list[str]
    seconds: float


def _child(name: str, root: Path, timeout_s: float) -> tuple[int | None, str, str]:
    """Runs ``python -m bench --part name``; kills its whole process group on timeout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--part", name, "--dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err


def collect(part: Part, root: Path) -> Outcome:
    """Runs one part in its child and turns what it printed into rows."""
    t0 = time.perf_counter()
    code, out, err = _child(part.name, root, part.timeout_s)
    seconds = time.perf_counter() - t0
    rows: list[Row] = []
    details: list[str] = []
    for line in out.splitlines():
        if line.startswith(MARKER):
            rows = [Row(**r) for r in json.loads(line[len(MARKER) :])]
        elif line.strip():
            details.append(line.strip())
    if any(r.ferry.startswith("ERROR") for r in rows) or code != 0:
        details += [f"[{part.name} stderr] {line}" for line in err.strip().splitlines()[-15:]]
    if not rows:
        why = f"timed out after {part.timeout_s:g} s" if code is None else f"exit status {code}"
        last = err.strip().splitlines()[-1:] or [""]
        rows = [failed_row(f"({part.name})", f"{why}: {last[0]}")]
    return Outcome(part.name, rows, details, seconds)


def _met(row: Row) -> str:
    if row.met is None:
        return DASH
    return "yes" if row.met else "**no**"


def render(rows: list[Row]) -> list[str]:
    """The table as Markdown lines, columns padded so it also reads as plain text."""
    header = ("metric", "Ferry", "reference", "ratio", "goal", "met?")
    cells = [header] + [(r.metric, r.ferry, r.reference, r.ratio, r.goal, _met(r)) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for n, cell in enumerate(cells):
        lines.append(
            "| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def drive(root: Path, names: list[str]) -> int:
    """Runs the chosen parts one after another and prints the table; 0 unless a part failed."""
    started = time.perf_counter()
    print(f"date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {machine(root)}")
    print(f"command: {shlex.join(sys.orig_argv)} (load average at start: {_load()})", flush=True)
    outcomes: list[Outcome] = []
    chosen = [p for p in PARTS if p.name in names]
    for i, part in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {part.name} ...", file=sys.stderr, flush=True)
        outcome = collect(part, root)
        print(f"[{i}/{len(chosen)}] {part.name}: {outcome.seconds:.1f} s", file=sys.stderr)
        outcomes.append(outcome)
    total = time.perf_counter() - started
    print()
    print("\n".join(render([r for o in outcomes for r in o.rows])))
    print()
    print("wall time per part: " + ", ".join(f"{o.part} {o.seconds:.0f} s" for o in outcomes))
    print(f"total wall time: {total:.0f} s; load average at end: {_load()}")
    details = [d for o in outcomes for d in o.details]
    if details:
        print("details:")
        print("\n".join(f"  {d}" for d in details))
    failed = any(r.ferry.startswith("ERROR") for o in outcomes for r in o.rows)
    return 1 if failed else 0


def _load() -> str:
    with contextlib.suppress(OSError):
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"


def main() -> None:
    """`python -m bench`: the whole table, or one part in a child (``--part``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--only", default="", help="comma-separated parts: " + ",".join(p.name for p in PARTS)
    )
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.dir.resolve()
    if args.part:
        run_part(args.part, root)
        return
    names = [n for n in args.only.split(",") if n] or [p.name for p in PARTS]
    unknown = set(names) - {p.name for p in PARTS}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    sys.exit(drive(root, names))


if __name__ == "__main__":
    main()

"""Sync actor benchmarks (issue 5): the real ``SyncActor`` draining a capture dir into a real cloud.

Each scenario starts a fresh ``ferry cloud serve`` process on loopback (plaintext)
with a fresh data dir and API key, fills a temp capture dir, runs the production
``SyncActor`` (``grpc_connector``, ``ThreadRunner``, ``OsFileSystem``,
``SystemWallClock``, ``random.Random(0)``) in ``trio.run`` under ``open_aio_loop``,
and times one manual ``sync_now(wait=True)`` from the start of the pass to the
last confirmation. Scheduled passes are off (``sync_disabled``), so the timed pass
is the only one. After each scenario the capture dir must be empty and the
cloud's store must hold exactly the readings / binary items written.

1. Large binary files (threads 4, chunks of 1 MiB and of 2 MiB): MiB/s, next to
   the raw grpclib streaming ceiling (the same bytes in the same chunk size to a
   handler that discards them, ``bench.cloud``'s sink), measured in the same run.
   Goal: >= 0.8x the ceiling.
2. A backlog of small tabular files (default threads = max(1, cpus // 2), 1 MiB
   chunks): readings/s. Goal: >= 50,000 readings/s.
3. Peak RSS of this process (psutil, sampled every 50 ms) while draining a small
   and a large backlog of the same files. Goal: flat (O(threads), not O(files)).
4. A backlog of small binary files (camera frames, 20 KiB): files/s, reported.
5. A backlog of small arbitrary files (notes another program dropped, 2 KiB):
   files/s, reported.

Run: python -m bench.sync [--quick] [--backlog-files N] [--binary-mib N] [--binary-files N]
     [--only binary|tabular|frames|notes] [--tags TAG,...] [--frames N] [--frame-kib K]
     [--notes N] [--note-kib K]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import trio

from actors.adapters.aio import open_aio_loop
from actors.adapters.clock import SystemWallClock
from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import ThreadRunner
from actors.adapters.sync_links import grpc_connector
from actors.codec import CAPTURE_EXT, RecordEncoder, collector_dir, encode_header, file_stem
from actors.config import CloudSettings
from actors.run_cmd import tune_agent_process
from actors.sync.actor import SyncActor, SyncSeams
from actors.sync.plan import SyncPlan
from bench.cloud import binary_file, cpu_seconds, raw_ceiling, start_server
from cloud.aio_loop import run_asyncio
from cloud.auth import create_api_key
from cloud.model import Filter, Principal
from cloud.store.sqlite import SqliteStore
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from actors.sync.actor import PassResult
    from actors.sync.stats import SyncCounters

MIB = 1 << 20
PART = "bench-part"
ORG, LOC = "bench", "loc"
T0 = 1_700_000_000_000_000_000
READING_PERIOD_NS = 10_000_000
RSS_SAMPLE_S = 0.05


# ----------------------------------------------------------------- capture files


def write_backlog(caps: Path, files: int, readings: int, collectors: int) -> int:
    """``files`` finished tabular capture files spread over ``collectors`` sensors; returns bytes.

    The bytes are the writer's (``encode_header`` + ``RecordEncoder`` framing),
    written without the writer's fsyncs so 10,000 files take seconds, not minutes.
    """
    enc = RecordEncoder()
    total = 0
    dirs = []
    headers = []
    for c in range(collectors):
        header = datasync.DataCaptureMetadata(
            component_type="rdk:component:movement_sensor",
            component_name=f"imu-{c}",
            method_name="LinearAcceleration",
            type=datasync.DataType.TABULAR_SENSOR,
            file_extension=".dat",
        )
        directory = collector_dir(
            caps, header.component_type, header.component_name, header.method_name
        )
        directory.mkdir(parents=True)
        dirs.append(directory)
        headers.append(encode_header(header))
    for n in range(files):
        c, j = n % collectors, n // collectors
        start = T0 + j * readings * READING_PERIOD_NS
        parts = [headers[c]]
        for i in range(readings):
            t = start + i * READING_PERIOD_NS
            seq = j * readings + i
            reading = {"readings": {"x": 0.01 * seq, "y": -9.81 + 0.001 * i, "z": 0.5, "seq": seq}}
            parts.append(enc.tabular(t, t + 1_000_000, reading))
        data = b"".join(parts)
        (dirs[c] / (file_stem(start) + CAPTURE_EXT)).write_bytes(data)
        total += len(data)
    return total


def write_binaries(caps: Path, files: int, size: int) -> list[bytes]:
    """``files`` binary capture files of ``size`` random payload bytes; returns their bytes."""
    directory = collector_dir(caps, "rdk:component:camera", "cam", "ReadImage")
    return [binary_file(directory, i, size).read_bytes() for i in range(files)]


def write_notes(caps: Path, files: int, size: int) -> None:
    """``files`` arbitrary files of ``size`` random bytes, modified an hour ago (ready)."""
    directory = caps / "notes"
    directory.mkdir(parents=True)
    hour_ago = time.time() - 3600
    for i in range(files):
        path = directory / f"note-{i:05d}.txt"
        path.write_bytes(os.urandom(size))
        os.utime(path, (hour_ago, hour_ago))


def files_left(caps: Path) -> int:
    return sum(1 for p in caps.rglob("*") if p.is_file())


# ----------------------------------------------------------------- the cloud


@dataclass
class Cloud:
    port: int
    key: tuple[str, str]
    data_dir: Path
    pid: int | None = None  # the server process, when this module started it

    def settings(self) -> CloudSettings:
        return CloudSettings(
            address=f"127.0.0.1:{self.port}",
            host="127.0.0.1",
            port=self.port,
            part_id=PART,
            api_key_id=self.key[0],
            api_key=self.key[1],
            tls_ca_file=None,
            insecure=True,
        )

    def counts(self) -> tuple[int, int]:
        """(readings, binary items) in the store; call after the server has stopped."""
        store = SqliteStore(self.data_dir)
        try:
            who = Principal(self.key[0], ORG, LOC)
            return store.count_tabular(who, Filter()), store.count_binary(who, Filter())
        finally:
            store.close()


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[Cloud]:
    """A ``ferry cloud serve`` process on a fresh data dir with one API key."""
    store = SqliteStore(data_dir)
    key = create_api_key(store, org_id=ORG, location_id=LOC, wall_ns=time.time_ns)
    store.close()
    proc, port = start_server(data_dir)
    try:
        yield Cloud(port, key, data_dir, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# ----------------------------------------------------------------- the sync actor


@dataclass
class Drained:
    seconds: float
    result: PassResult
    counters: SyncCounters
    base_rss: int
    peak_rss: int


async def _no_rotate() -> None:
    """No writer runs here: every file is already finished."""


async def _sample_rss(peak: list[int]) -> None:
    proc = psutil.Process()
    while True:
        peak[0] = max(peak[0], proc.memory_info().rss)
        await trio.sleep(RSS_SAMPLE_S)


async def _drain(plan: SyncPlan) -> Drained:
    fs, runner = OsFileSystem(), ThreadRunner()
    seams = SyncSeams(
        fs=fs,
        runner=runner,
        clock=SystemWallClock(),
        rng=random.Random(0),
        connect=grpc_connector(fs, runner),
        rotate=_no_rotate,
    )
    actor = SyncActor(plan, seams)
    async with open_aio_loop(), trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        base = psutil.Process().memory_info().rss
        peak = [base]
        nursery.start_soon(_sample_rss, peak)
        t0 = time.perf_counter()
        result = await actor.sync_now(wait=True)
        seconds = time.perf_counter() - t0
        peak[0] = max(peak[0], psutil.Process().memory_info().rss)
        nursery.cancel_scope.cancel()
    return Drained(seconds, result, actor.status.counters, base, peak[0])


def drain(
    caps: Path, cloud: Cloud, *, threads: int, chunk: int, tags: tuple[str, ...] = ()
) -> Drained:
    plan = SyncPlan(
        capture_dirs=(caps,),
        cloud=cloud.settings(),
        sync_disabled=True,  # only the timed manual pass runs
        interval_s=3600.0,
        threads=threads,
        chunk_bytes=chunk,
        tags=tags,  # the data manager's tags, added to every file
    )
    return trio.run(_drain, plan)


def verify(
    name: str, caps: Path, cloud: Cloud, got: Drained, files: int, rows: tuple[int, int]
) -> None:
    """Fails loudly unless every file was confirmed, deleted and stored exactly once."""
    r, c = got.result, got.counters
    stored = cloud.counts()
    left = files_left(caps)
    print(
        f"  check {name}: pass files {r.files} confirmed {r.confirmed} failed {r.failed} "
        f"left {r.left}; local files left {left}; cloud readings {stored[0]:,} "
        f"binary {stored[1]}; retries {c.retries}, resent {c.bytes_resent} B"
    )
    ok = (r.files, r.confirmed, left, stored) == (files, files, 0, rows)
    if not ok:
        raise RuntimeError(f"{name}: data check failed (expected {files} files, cloud {rows})")


# ----------------------------------------------------------------- scenarios

Row = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class BinarySync:
    """One binary scenario: MiB moved, Ferry's and the raw grpclib stream's seconds."""

    mib: float
    ferry_s: float
    raw_s: float
    cloud_cpu_s: float = 0.0
    robot_cpu_s: float = 0.0

    @property
    def ferry_mib_s(self) -> float:
        """Ferry's sync throughput."""
        return self.mib / self.ferry_s

    @property
    def raw_mib_s(self) -> float:
        """The raw grpclib stream's throughput on the same bytes."""
        return self.mib / self.raw_s


def binary_sync(
    root: Path,
    *,
    files: int,
    file_mib: int,
    threads: int,
    chunk: int,
    beside: Callable[[list[Path]], None] | None = None,
) -> BinarySync:
    """Ferry's sync of ``files`` binary capture files, then the raw ceiling on the same bytes.

    ``beside`` gets the files' paths before Ferry uploads (and deletes) them, so
    another reference (rsync) can copy exactly the same files in the same run.
    """
    caps = root / f"caps-bin-{chunk}"
    blobs = write_binaries(caps, files, file_mib * MIB)
    if beside is not None:
        beside(sorted(p for p in caps.rglob("*") if p.is_file()))
    with serving(root / f"cloud-bin-{chunk}") as cloud:
        server, agent = cpu_seconds(cloud.pid), cpu_seconds()
        got = drain(caps, cloud, threads=threads, chunk=chunk)
        server, agent = cpu_seconds(cloud.pid) - server, cpu_seconds() - agent
    verify(f"binary {files}x{file_mib} MiB", caps, cloud, got, files, (0, files))
    raw_s = run_asyncio(raw_ceiling(blobs, threads, chunk))
    return BinarySync(sum(len(b) for b in blobs) / MIB, got.seconds, raw_s, server, agent)


def binary_rows(root: Path, args: argparse.Namespace, chunk: int) -> list[Row]:
    """The table rows of one binary scenario."""
    name = f"binary {args.binary_files}x{args.binary_mib} MiB, {args.binary_threads} thr"
    name += f", {chunk // MIB} MiB chunks"
    r = binary_sync(
        root,
        files=args.binary_files,
        file_mib=args.binary_mib,
        threads=args.binary_threads,
        chunk=chunk,
    )
    ratio = r.ferry_mib_s / r.raw_mib_s
    verdict = "ok" if ratio >= 0.8 else "MISS"
    return [
        (
            name,
            f"{r.ferry_mib_s:,.0f} MiB/s",
            f"{r.raw_mib_s:,.0f} MiB/s raw",
            f"{ratio:.2f}x",
            verdict,
        ),
        (
            "  (same run) CPU per MiB: cloud, robot",
            f"{1e3 * r.cloud_cpu_s / r.mib:.2f} ms",
            f"{1e3 * r.robot_cpu_s / r.mib:.2f} ms",
            "",
            "",
        ),
    ]


def backlog(
    root: Path,
    files: int,
    *,
    readings: int,
    collectors: int,
    threads: int,
    tags: tuple[str, ...] = (),
) -> tuple[str, Drained]:
    """Drains a backlog of ``files`` small tabular files; checks the cloud got every reading."""
    name = f"backlog {files:,} files"
    caps = root / f"caps-tab-{files}"
    size = write_backlog(caps, files, readings, collectors)
    with serving(root / f"cloud-tab-{files}") as cloud:
        server, agent = cpu_seconds(cloud.pid), cpu_seconds()
        got = drain(caps, cloud, threads=threads, chunk=MIB, tags=tags)
        server, agent = cpu_seconds(cloud.pid) - server, cpu_seconds() - agent
    verify(name, caps, cloud, got, files, (files * readings, 0))
    print(
        f"  {name}: {size / files:,.0f} B/file, {got.seconds:.1f} s; CPU per file: "
        f"cloud {1e6 * server / files:,.0f} µs, robot {1e6 * agent / files:,.0f} µs"
    )
    return name, got


@dataclass(frozen=True)
class RssFlat:
    """Peak RSS draining a small and a large backlog of the same files, and the verdict."""

    small_files: int
    large_files: int
    readings: int
    small: Drained
    large: Drained
    allowance: int

    @property
    def diff(self) -> int:
        """Peak RSS of the large backlog minus that of the small one."""
        return self.large.peak_rss - self.small.peak_rss

    @property
    def growth(self) -> int:
        """Growth above its own base of the large backlog minus that of the small one."""
        return (self.large.peak_rss - self.large.base_rss) - (
            self.small.peak_rss - self.small.base_rss
        )

    @property
    def flat(self) -> bool:
        """Whether the difference stays within O(threads) (the allowance)."""
        return max(self.diff, self.growth) <= self.allowance

    @property
    def per_file(self) -> float:
        """Bytes of growth per extra file."""
        return self.growth / max(1, self.large_files - self.small_files)

    @property
    def readings_per_s(self) -> float:
        """The large backlog's drain rate."""
        return self.large_files * self.readings / self.large.seconds


def rss_flat(
    root: Path,
    *,
    small: int,
    large: int,
    readings: int,
    collectors: int,
    threads: int,
    tags: tuple[str, ...] = (),
) -> RssFlat:
    """Drains a ``small`` then a ``large`` backlog in this process, sampling peak RSS."""
    got_small, got_large = (
        backlog(root, files, readings=readings, collectors=collectors, threads=threads, tags=tags)[
            1
        ]
        for files in (small, large)
    )
    # O(threads): each worker holds at most one chunk; 2 MiB of slack for allocator noise.
    allowance = threads * MIB + 2 * MIB
    return RssFlat(small, large, readings, got_small, got_large, allowance)


def frames_rows(root: Path, args: argparse.Namespace) -> list[Row]:
    """A backlog of small binary files (camera frames): files/s, and the CPU they took."""
    caps = root / "caps-frames"
    write_binaries(caps, args.frames, args.frame_kib * 1024)
    return _small_files_row(root, args, "frame", caps, args.frames, args.frame_kib)


def notes_rows(root: Path, args: argparse.Namespace) -> list[Row]:
    """A backlog of small arbitrary files: files/s, and the CPU they took."""
    caps = root / "caps-notes"
    write_notes(caps, args.notes, args.note_kib * 1024)
    return _small_files_row(root, args, "note", caps, args.notes, args.note_kib)


def _small_files_row(
    root: Path, args: argparse.Namespace, name: str, caps: Path, n: int, kib: int
) -> list[Row]:
    """Drains ``n`` small files, each stored as one binary item, and reports files/s."""
    with serving(root / f"cloud-{name}") as cloud:
        server, agent = cpu_seconds(cloud.pid), cpu_seconds()
        got = drain(caps, cloud, threads=args.threads, chunk=MIB)
        server, agent = cpu_seconds(cloud.pid) - server, cpu_seconds() - agent
    verify(f"{name}s {n}", caps, cloud, got, n, (0, n))
    print(
        f"  {name}s: {n} x {kib} KiB, {got.seconds:.1f} s; CPU per file: "
        f"cloud {1e6 * server / n:,.0f} µs, robot {1e6 * agent / n:,.0f} µs"
    )
    return [
        (
            f"{name} backlog {n:,} x {kib} KiB, {args.threads} thr",
            f"{n / got.seconds:,.0f} files/s",
            "",
            "",
            "info",
        )
    ]


def tabular_rows(root: Path, args: argparse.Namespace) -> list[Row]:
    """The table rows of the tabular backlog: drain rate and peak RSS, small vs large."""
    r = rss_flat(
        root,
        small=args.small_files,
        large=args.backlog_files,
        readings=args.readings,
        collectors=args.collectors,
        threads=args.threads,
        tags=args.tags,
    )
    rate = r.readings_per_s
    tagged = ", tags" if args.tags else ""
    rows: list[Row] = [
        (
            f"tabular backlog {args.backlog_files:,} files x{args.readings}, "
            f"{args.threads} thr{tagged}",
            f"{rate:,.0f} rd/s",
            "50,000 rd/s",
            f"{rate / 50_000:.2f}x",
            "ok" if rate >= 50_000 else "MISS",
        ),
        (
            "  (same run) files/s",
            f"{args.backlog_files / r.large.seconds:,.0f} files/s",
            "",
            "",
            "",
        ),
    ]
    for label, d in ((f"{args.small_files:,}", r.small), (f"{args.backlog_files:,}", r.large)):
        rows.append(
            (
                f"peak RSS, {label}-file backlog",
                f"{d.peak_rss / MIB:,.1f} MiB",
                f"base {d.base_rss / MIB:,.1f} MiB",
                f"+{(d.peak_rss - d.base_rss) / MIB:,.1f} MiB",
                "",
            )
        )
    rows.append(
        (
            "peak RSS difference (large - small)",
            f"{r.diff / MIB:+,.1f} MiB",
            f"allowance {r.allowance / MIB:,.1f} MiB",
            f"{r.per_file:+,.0f} B/file",
            "ok (flat)" if r.flat else "MISS (grows with files)",
        )
    )
    return rows


# ----------------------------------------------------------------- main


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / (1 << 30)
    return (
        f"machine: {model}, {os.cpu_count()} cores, {mem:.1f} GiB RAM, "
        f"Python {platform.python_version()} ({sys.platform})"
    )


def parse_args() -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--binary-mib", type=int, default=64, help="size of one binary file")
    parser.add_argument("--binary-files", type=int, default=4, help="binary capture files")
    parser.add_argument("--binary-threads", type=int, default=4, help="sync threads (binary)")
    parser.add_argument("--backlog-files", type=int, default=10_000, help="large backlog")
    parser.add_argument("--small-files", type=int, default=100, help="small backlog (RSS)")
    parser.add_argument("--readings", type=int, default=20, help="readings per tabular file")
    parser.add_argument("--collectors", type=int, default=4, help="sensor dirs of the backlog")
    parser.add_argument("--threads", type=int, default=max(1, cpus // 2), help="sync threads")
    parser.add_argument(
        "--only", choices=("binary", "tabular", "frames", "notes"), help="run one group"
    )
    parser.add_argument("--frames", type=int, default=1000, help="small binary files")
    parser.add_argument("--frame-kib", type=int, default=20, help="size of one frame")
    parser.add_argument("--notes", type=int, default=1000, help="small arbitrary files")
    parser.add_argument("--note-kib", type=int, default=2, help="size of one arbitrary file")
    parser.add_argument(
        "--tags",
        type=lambda text: tuple(t for t in text.split(",") if t),
        default=(),
        help="data manager tags for the tabular backlog (comma-separated)",
    )
    args = parser.parse_args()
    if args.quick:
        args.binary_mib, args.binary_files = 4, 2
        args.backlog_files, args.small_files = 500, 50
    return args


def main() -> None:
    args = parse_args()
    tune_agent_process()  # this process runs the sync actor, as `ferry run` would
    print(machine())
    print(f"command: {shlex.join(sys.orig_argv)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ferry-bench-sync-") as tmp:
        root = Path(tmp)
        if args.only in (None, "tabular"):
            rows += tabular_rows(root, args)
        if args.only in (None, "frames"):
            rows += frames_rows(root, args)
        if args.only in (None, "notes"):
            rows += notes_rows(root, args)
        if args.only in (None, "binary"):
            for chunk in (MIB, 2 * MIB):
                rows += binary_rows(root, args, chunk)
    print(f"{'metric':<44} {'Ferry':>16} {'reference':>22} {'ratio':>10}  goal")
    for metric, ferry, ref, ratio, verdict in rows:
        print(f"{metric:<44} {ferry:>16} {ref:>22} {ratio:>10}  {verdict}")
    print("goals: binary >= 0.8x raw grpclib ceiling; tabular >= 50,000 readings/s; RSS flat")
    print("note: the raw ceiling runs client and sink in this one process; Ferry runs two")


if __name__ == "__main__":
    main()

"""Capture-file rotation (``actors.capture_store.CaptureStore``) against a model of the files.

A ``RuleBasedStateMachine`` drives one store on a real file system (a fresh
temporary directory per example): tabular readings are enqueued for a few
streams whose spec can change (a reconfigure), with small size and age limits;
Trio time and the wall clock advance (the wall clock also by less than a
microsecond, and backwards); the store processes now or at its own
``next_deadline``; rotation is requested for some or all streams; and every
file is finished. The model says, per stream, which readings are in which file
and what each file is called.

Guarantees checked:

1. Every enqueued reading ends in exactly one finished ``.capture`` file, and a
   stream's files, in the order they were finished, hold its readings in
   enqueue order (decoded with ``actors.codec.iter_records``); after
   ``finish_all`` no ``.prog`` remains and every processed reading is in a
   finished file (readings still queued wait for the next ``process``).
2. Size: a file never holds a record after the first one that took it to
   ``max_file_bytes`` (every record but the first starts below the limit).
   Age: after ``process(now)`` no open file is ``max_file_age_s`` old (counted
   from the ``now`` of the ``process`` that opened it).
3. Names: every file name is unique, and no two files of a directory share a
   time stem (``stem_time_ns``); a new file takes the first free microsecond at
   or after the wall clock; with a clock that never steps back, a stream's
   names sort in the order its files were written.
4. ``next_deadline(now)`` is never in the past and never later than the next
   due age rotation or fsync (exactly the earlier of the two); after
   ``process(now)`` it is later than ``now`` (the writer never spins).
5. The files, their contents and order match the model exactly.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors.adapters.os_fs import OsFileSystem
from actors.capture_store import CaptureStore
from actors.codec import CAPTURE_EXT, PROG_EXT, RecordEncoder, file_stem, iter_records, stem_time_ns
from actors.messages import CaptureMsg, InflightGauge
from sim.world import fast_tmp_dir
from tests.runtime.conftest import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from actors.codec import JsonObject
    from actors.messages import StreamSpec

STREAMS = ("a", "b", "c")
WALL0 = 1_763_000_000_000_000_000
US = 1_000
INF = float("inf")


@dataclass(frozen=True)
class Reading:
    """One enqueued reading, as the model knows it."""

    id: int
    stream: int
    spec: StreamSpec
    data: JsonObject
    time_requested_ns: int
    framed: int  # bytes it adds to a file


@dataclass
class ModelFile:
    """One capture file: its stream and spec, when it was opened, its name and its readings."""

    stream: int
    spec: StreamSpec
    opened_at: float
    stem_ns: int
    size: int
    readings: list[int] = field(default_factory=list)
    why: str = ""  # why it was finished: size, spec, age, request, finish_all

    def __post_init__(self) -> None:
        stem = file_stem(self.stem_ns)
        self.prog = self.spec.directory / f"{stem}{PROG_EXT}"
        self.capture = self.spec.directory / f"{stem}{CAPTURE_EXT}"

    @property
    def age_due(self) -> float:
        return self.opened_at + self.spec.max_file_age_s


class RotationAgainstModelFiles(RuleBasedStateMachine):
    """One ``CaptureStore`` on a temporary directory, and the files it must have written.

    The model is ``queue`` (enqueued, not yet processed), ``open`` (per stream),
    ``rotate`` (streams whose open file was asked to finish) and ``finished``;
    ``stems`` is every time stem a directory has used. What the files on disk
    hold is decoded once per file, into ``decoded`` and ``written``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix="ferry-rotation-", dir=fast_tmp_dir())
        self.root = Path(self._tmp.name) / "capture"
        self.store: CaptureStore | None = None
        self.fsync_interval = 1.0
        self.specs: list[tuple[StreamSpec, StreamSpec]] = []
        self.variant = [0] * len(STREAMS)
        self.now = 0.0
        self.wall = WALL0
        self.wall_stepped_back = False
        self.encoder = RecordEncoder()
        self.broken = False
        # The model.
        self.readings: list[Reading] = []
        self.enqueued: list[list[int]] = [[] for _ in STREAMS]
        self.queue: list[Reading] = []
        self.open: dict[int, ModelFile] = {}
        self.rotate: set[int] = set()
        self.finished: list[ModelFile] = []
        self.stems: defaultdict[Path, set[int]] = defaultdict(set)
        self.last_sync = 0.0
        # What the finished files hold, read back from disk.
        self.decoded: dict[Path, list[int]] = {}
        self.written: list[list[int]] = [[] for _ in STREAMS]
        self.finished_stems: defaultdict[Path, set[int]] = defaultdict(set)
        self.last_name: list[str] = ["" for _ in STREAMS]

    @contextlib.contextmanager
    def step(self) -> Iterator[CaptureStore]:
        """Marks the machine broken unless the step completes (teardown then skips its checks)."""
        assert self.store is not None
        self.broken = True
        yield self.store
        self.broken = False

    # ------------------------------------------------------------ setup

    @initialize(
        max_bytes=st.lists(st.sampled_from([200, 1, 100, 2_000]), min_size=2, max_size=2),
        max_age=st.lists(st.sampled_from([1.0, 0.5, 2.5, 1e9]), min_size=2, max_size=2),
        buffer_bytes=st.sampled_from([4096, 1, 100]),
        fsync_interval=st.sampled_from([1.0, 0.3, 1e9]),
        start=st.sampled_from([0.0, 12_345.678, 0.1 * 64, 0.1 * 104]),
    )
    def configure(self, max_bytes, max_age, buffer_bytes, fsync_interval, start):
        """Each stream has two specs (a reconfigure switches them): different tags, so a
        different header, and each its own size and age limit."""
        world = World(self.root)

        def spec(name: str, v: int) -> StreamSpec:
            return world.collector(
                name,
                1.0,
                tags=(f"v{v}",),
                max_file_bytes=max_bytes[v],
                max_file_age_s=max_age[v],
                buffer_bytes=buffer_bytes,
            ).stream()

        self.specs = [(spec(name, 0), spec(name, 1)) for name in STREAMS]
        self.fsync_interval = fsync_interval
        self.store = CaptureStore(OsFileSystem(), fsync_interval_s=fsync_interval)
        self.now = start

    # ------------------------------------------------------------ rules

    @rule(
        batch=st.lists(
            st.tuples(
                st.integers(0, len(STREAMS) - 1),
                st.integers(0, 40),
                st.integers(0, 7).map(lambda n: n == 7),  # reconfigure first, now and then
            ),
            min_size=1,
            max_size=6,
        ),
        then_process=st.booleans(),
    )
    def enqueue(self, batch, then_process):
        """Collectors hand the writer readings (``pad`` varies their size); a stream may
        be reconfigured first (its spec changes, so it must start a new file)."""
        with self.step() as store:
            for stream, pad, reconfigure in batch:
                self.variant[stream] ^= reconfigure
                n = len(self.readings)
                spec = self.specs[stream][self.variant[stream]]
                data: JsonObject = {"readings": {"id": f"r{n}", "pad": "x" * pad}}
                t_req = WALL0 + n * US
                framed = self.encoder.tabular(t_req, t_req + 7, data, b"")
                reading = Reading(n, stream, spec, data, t_req, len(framed))
                self.readings.append(reading)
                self.enqueued[stream].append(n)
                self.queue.append(reading)
                store.enqueue(CaptureMsg(spec, InflightGauge(1_000), t_req, t_req + 7, data))
        if then_process:
            self._process()

    @rule(
        dt=st.sampled_from([0.1, 0.0, 0.3, 1.0, 2.5]),
        wall_step=st.sampled_from([None, 0, 1, 999, US, -3_000_000_000]),
        then_process=st.booleans(),
    )
    def time_passes(self, dt, wall_step, then_process):
        """Trio time moves on by ``dt``; the wall clock with it (``None``), by a few ns, or
        back; then the writer may process."""
        self.now += dt
        self.wall += round(dt * 1e9) if wall_step is None else wall_step
        self.wall_stepped_back |= wall_step is not None and wall_step < 0
        if then_process:
            self._process()

    @precondition(lambda self: self.store is not None and self.store.next_deadline(self.now) < INF)
    @rule()
    def process_at_deadline(self):
        """The writer wakes exactly at the deadline the store gave it."""
        assert self.store is not None
        due = self.store.next_deadline(self.now)
        self.wall += max(0, round((due - self.now) * 1e9))
        self.now = due
        self._process()

    @rule(which=st.none() | st.sets(st.integers(0, len(STREAMS) - 1), max_size=len(STREAMS)))
    def request_rotate(self, which):
        """Sync asks for every open file (``None``), or those of some streams, to be finished."""
        with self.step() as store:
            if which is None:
                store.request_rotate(None)
                self.rotate |= self.open.keys()
            else:
                store.request_rotate(frozenset(self.specs[s][0].key for s in which))
                self.rotate |= self.open.keys() & which

    @rule()
    def finish_all(self):
        """Shutdown: every open file is finished; queued readings stay queued."""
        with self.step() as store:
            store.finish_all()
            for stream in list(self.open):
                self._retire(stream, "finish_all")
            self.rotate.clear()
            self.check_files()
            self.check_disk()
            assert store.open_files() == []
            assert not list(self.root.rglob(f"*{PROG_EXT}")), "a .prog outlived finish_all"
            # Every processed reading is in a file; the queued ones (the newest) wait.
            for s, enqueued in enumerate(self.enqueued):
                waiting = sum(r.stream == s for r in self.queue)
                assert self.written[s] == enqueued[: len(enqueued) - waiting], "a reading is lost"
            assert store.next_deadline(self.now) == INF

    # ------------------------------------------------------------ the model's process

    def _process(self) -> None:
        with self.step() as store:
            store.process(now=self.now, wall_ns=self.wall)
            for reading in self.queue:
                f = self.open.get(reading.stream)
                if f is not None and f.spec != reading.spec:
                    self._retire(reading.stream, "spec")
                elif f is not None and f.size >= f.spec.max_file_bytes and f.readings:
                    self._retire(reading.stream, "size")
                f = self.open.get(reading.stream)
                if f is None:
                    f = self._open_new(reading)
                    self.open[reading.stream] = f
                f.readings.append(reading.id)
                f.size += reading.framed
            self.queue.clear()
            for stream, f in list(self.open.items()):
                if stream in self.rotate:
                    self._retire(stream, "request")
                elif self.now >= f.age_due:
                    self._retire(stream, "age")
            self.rotate.clear()
            if self.now >= self.last_sync + self.fsync_interval:
                self.last_sync = self.now

            self.check_files()
            self.check_disk()
            for f in self.open.values():
                assert self.now < f.age_due, f"{f.prog} outlived its age"
            assert store.next_deadline(self.now) > self.now, "the writer would wake at once"

    def _open_new(self, reading: Reading) -> ModelFile:
        """Named for the first microsecond at or after the wall clock that no file of the
        directory has had."""
        taken = self.stems[reading.spec.directory]
        ns = self.wall - self.wall % US
        while ns in taken:
            ns += US
        taken.add(ns)
        return ModelFile(reading.stream, reading.spec, self.now, ns, len(reading.spec.header))

    def _retire(self, stream: int, why: str) -> None:
        f = self.open.pop(stream)
        f.why = why
        self.rotate.discard(stream)
        self.finished.append(f)

    # ------------------------------------------------------------ checks

    def check_files(self) -> None:
        """The files finished since the last check: names, order, and what they hold."""
        assert self.store is not None
        done = len(self.decoded)
        got, model = self.store.finished[done:], self.finished[done:]
        assert sorted(got) == sorted(f.capture for f in model), "not the model's files"
        for s, (spec, _) in enumerate(self.specs):
            mine = [f.capture for f in model if f.stream == s]
            assert [p for p in got if p.parent == spec.directory] == mine, "finished out of order"
        for f in model:
            assert f.capture not in self.decoded, f"{f.capture} was finished twice"
            stem_ns = stem_time_ns(f.capture.stem)
            assert stem_ns is not None, f"{f.capture}: a name without a time"
            assert stem_ns not in self.finished_stems[f.capture.parent], (
                f"{f.capture}: its time stem collides with another file's"
            )
            self.finished_stems[f.capture.parent].add(stem_ns)
            if not self.wall_stepped_back:
                assert f.capture.name > self.last_name[f.stream], "names out of write order"
            self.last_name[f.stream] = f.capture.name
            self.decoded[f.capture] = ids = self.read_back(f)
            # From the files alone: each stream's readings, once each, in enqueue order.
            self.written[f.stream] += ids
            enqueued = self.enqueued[f.stream]
            assert self.written[f.stream] == enqueued[: len(self.written[f.stream])], (
                f"stream {f.stream}: readings lost, repeated or out of enqueue order"
            )

    def read_back(self, f: ModelFile) -> list[int]:
        """Decodes one finished file: header, records, the size limit, and its size."""
        path = f.capture
        assert path.read_bytes().startswith(f.spec.header), f"{path}: not its spec's header"
        ids = []
        for i, (offset, record) in enumerate(iter_records(path)):
            # Every record but the first starts below the limit: a file that reached
            # max_file_bytes took no further record.
            assert i == 0 or offset < f.spec.max_file_bytes, (
                f"{path}: record {i} starts at byte {offset}, "
                f"but max_file_bytes is {f.spec.max_file_bytes}"
            )
            assert record.struct is not None
            inner = record.struct.get("readings")
            assert isinstance(inner, dict)
            rid = inner.get("id")
            assert isinstance(rid, str)
            reading = self.readings[int(rid.removeprefix("r"))]
            assert record.struct == reading.data
            assert record.time_requested_ns == reading.time_requested_ns
            assert record.time_received_ns == reading.time_requested_ns + 7
            ids.append(reading.id)
        assert ids, f"{path}: a finished file without a record"
        assert ids == f.readings, f"{path}: holds {ids}, the model says {f.readings}"
        size = path.stat().st_size
        assert size == f.size
        if f.why == "size":
            assert size >= f.spec.max_file_bytes, f"{path}: rotated for size below the limit"
        return ids

    def check_disk(self) -> None:
        """The directory holds the model's open .prog files and finished files, nothing else."""
        assert self.store is not None
        open_paths = {f.prog for f in self.open.values()}
        assert sorted(self.store.open_files()) == sorted(open_paths)
        on_disk = {Path(d, name) for d, _, names in os.walk(self.root) for name in names}
        assert on_disk == open_paths | self.decoded.keys(), "files on disk are not the model's"
        for path in open_paths:  # an open file's stem is no finished file's
            assert stem_time_ns(path.stem) not in self.finished_stems[path.parent]

    @invariant()
    def next_deadline_is_the_next_timed_work(self):
        if self.store is None:
            return
        got = self.store.next_deadline(self.now)
        dues = [f.age_due for f in self.open.values()]
        if self.open:
            dues.append(self.last_sync + self.fsync_interval)
        due = min(dues, default=INF)
        assert got >= self.now, "next_deadline is in the past"
        assert got <= max(due, self.now), "next_deadline is later than due work"
        assert got == max(due, self.now)

    @invariant()
    def every_reading_is_queued_open_or_finished(self):
        placed = sum(len(f.readings) for f in self.finished)
        placed += sum(len(f.readings) for f in self.open.values())
        assert placed + len(self.queue) == len(self.readings)
        if self.store is not None:
            assert self.store.queued == len(self.queue)

    def teardown(self):
        """Shutdown drains: process, finish everything; every reading is in exactly one file."""
        try:
            if self.store is not None and not self.broken:
                self._process()
                self.finish_all()
                assert self.written == self.enqueued, "a reading is in no file"
        finally:
            self._tmp.cleanup()


RotationAgainstModelFiles.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    # Each step's work counts as data generation in a state machine; a loaded CI box is slow.
    suppress_health_check=[HealthCheck.too_slow],
)
# A few seconds: marked slow like tests/sync/test_fsm.py.
TestRotationAgainstModelFiles = pytest.mark.slow(RotationAgainstModelFiles.TestCase)

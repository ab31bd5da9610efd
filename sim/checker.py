"""The invariant checker: guarantees 1-5 of ARCHITECTURE.md and the robot's tags, held
against what really happened.

It watches the disk (files finished, files deleted, what survived a power cut),
the network's books and every sync state-machine step, and at the end compares
the readings captured with what the cloud stores:

1. no loss: every captured reading is in the cloud, or its file was deleted by
   the disk-full policy and that deletion was logged;
2. no duplicates: the cloud holds each reading at most once;
3. delete only after confirm: a file sync deletes was durably finished in the cloud;
4. resume: the bytes put on the wire for a file exceed its size by at most one
   chunk per interruption;
5. liveness and backoff: no retry waits more than an hour, and once the
   network heals every finished file is synced;
6. tags kept: every reading and file the cloud stores carries the data
   manager's tag, however it was sent (alone, in a batch, after retries).

A reading is *captured* once it is in a finished ``.capture`` file, or in the
fsynced part of a ``.prog`` at a power cut (recovery must keep it). An arbitrary
file another program drops in the capture dir (``sim.files``) is captured when it
appears, and is held to guarantees 1-3 and 5 like a reading, its first line as
its key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

import trio

from actors.codec import (
    CAPTURE_EXT,
    CaptureFileError,
    CaptureFileReader,
    decode_sensor_payload,
)
from actors.sync import fsm
from actors.sync.backoff import MAX_DELAY_S
from cloud.ingest.resumable import file_sha256
from sim.files import FILE_KEY_PREFIX

if TYPE_CHECKING:
    from collections import Counter
    from pathlib import Path

    from actors.codec import JsonObject
    from actors.messages import CaptureMsg
    from actors.ports import SyncFile
    from sim.disk import Disk
    from sim.network import SimNetwork
    from sim.trace import Trace

RETENTION_LOGGER = "ferry.retention"


@final
@dataclass(frozen=True)
class Violation:
    """One broken guarantee, when it was seen, and the trace leading to it."""

    guarantee: str
    time: float
    message: str
    recent: tuple[str, ...]


@final
@dataclass
class Deletion:
    """A finished file that was deleted, with what it held."""

    rel: str
    time: float
    keys: list[str]
    confirmed: bool


@final
@dataclass
class Books:
    """The ledger of the run."""

    captured: dict[str, str] = field(default_factory=dict)
    """Reading key → the file it was first captured in."""
    deletions: list[Deletion] = field(default_factory=list)
    retention_logged: set[str] = field(default_factory=set)
    max_backoff_s: float = 0.0
    steps: int = 0


def reading_key(binary: bytes | None, struct: JsonObject | None) -> str | None:
    """The key of a reading as a file holds it or as the writer takes it (None: no key).

    A binary reading's key is its payload's first line. A Struct number is a
    double, so ``seq`` reads back as ``1.0`` where a collector sent ``1``: the key
    uses the double either way.
    """
    if binary is not None:
        return binary.split(b"\n", 1)[0].decode(errors="replace")
    readings = (struct or {}).get("readings")
    if not isinstance(readings, dict):
        return None
    seq = readings.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        seq = float(seq)
    return f"{readings.get('src')}#{seq}"


def read_keys(path: Path, limit: int | None = None) -> list[str]:
    """The reading keys of a capture file's complete records (within ``limit`` bytes)."""
    keys: list[str] = []
    try:
        with CaptureFileReader(path) as reader:
            # ``decoded`` reads a small file at once and cuts it in memory (records()
            # reads each frame on its own); both stop at the same torn or corrupt record.
            # Only each record's data is decoded: the key needs no timestamps.
            for _offset, (struct, binary) in reader.decoded(decode_sensor_payload):
                if limit is not None and reader.good_offset > limit:
                    break
                keys.append(reading_key(binary, struct) or "?")
    except (CaptureFileError, FileNotFoundError):
        pass
    return keys


def _first_line(path: Path) -> str:
    with path.open("rb") as f:
        return f.readline().rstrip(b"\n").decode(errors="replace")


@final
class Checker:
    """Collects evidence during the run and judges it (``violations``)."""

    def __init__(self, trace: Trace, net: SimNetwork, chunk_bytes: int) -> None:
        self._trace = trace
        self._net = net
        self._chunk = chunk_bytes
        self.disk: Disk | None = None
        self.books = Books()
        self.violations: list[Violation] = []
        self._handler = _RetentionLog(self.books, self)
        self._keys: dict[Path, tuple[int, list[str]]] = {}
        """Size and reading keys of each finished file, until it is deleted."""
        self._deleted: set[tuple[int, bytes]] = set()
        """The contents (size, SHA-256) of the files deleted so far."""
        self._accepted: set[str] = set()
        """Readings the writer has put in a file, not yet captured (nor excused)."""
        self.excused = 0
        """Readings the writer had accepted when a power cut came before they were captured."""

    def violate(self, guarantee: str, message: str) -> None:
        """Records a violation now (the run goes on; the report lists the first ones)."""
        self._trace.event("VIOLATION", f"{guarantee}: {message}")
        self.violations.append(
            Violation(guarantee, trio.current_time(), message, tuple(self._trace.recent))
        )

    def rel(self, path: Path) -> str:
        return self.disk.rel(path) if self.disk is not None else path.name

    # ------------------------------------------------------------ DiskObserver

    def finished(self, path: Path) -> None:
        keys = read_keys(path)
        self._keys[path] = (path.stat().st_size, keys)
        self._capture(path, keys)

    def survived_power_cut(self, path: Path, durable: int) -> None:
        self._capture(path, read_keys(path, durable))

    def _capture(self, path: Path, keys: list[str]) -> None:
        rel = self.rel(path)
        accepted = self._accepted
        for key in keys:
            self.books.captured.setdefault(key, rel)
            accepted.discard(key)

    # ------------------------------------------------------------ the writer

    def accepted(self, msg: CaptureMsg) -> None:
        """The writer put a reading in a file: it must be captured, unless the power goes
        first (then it may be lost in the unsynced window, and is excused)."""
        key = reading_key(msg.payload, msg.data)
        if key is not None and key not in self.books.captured:
            self._accepted.add(key)

    def power_lost(self) -> None:
        """A power cut interrupts each file the cloud finished but the robot has not deleted,
        and excuses the readings the writer held but had not yet captured.

        Guarantee 4 allows such a file one chunk more: an ``UploadFiles`` batch sends
        a small file whole again after a restart (the cloud knows it and keeps one
        copy), where a resumable upload would ask first and send nothing.
        """
        interruptions = self._net.interruptions
        for content in self._net.finished - self._deleted:
            interruptions[content] += 1
        self.excused += len(self._accepted)
        self._accepted.clear()

    def resurrected(self, path: Path) -> None:
        """A deletion a power cut undid: it no longer counts, and the file is known again.

        A file the cloud had finished is then one the robot has not deleted, as in
        ``power_lost`` (which ran before the undo): this cut interrupts it once.
        """
        content = (path.stat().st_size, file_sha256(path))
        self._deleted.discard(content)
        if content in self._net.finished:
            self._net.interruptions[content] += 1
        rel = self.rel(path)
        deletions = self.books.deletions
        for i in range(len(deletions) - 1, -1, -1):
            if deletions[i].rel == rel:
                deletion = deletions.pop(i)
                if path.name.endswith(CAPTURE_EXT):
                    self._keys[path] = (path.stat().st_size, deletion.keys)
                break
        self._trace.event("disk", f"back {rel}")

    def dropped(self, path: Path, key: str) -> None:
        """An arbitrary file another program put in the capture dir; ``key`` is its first line."""
        self.books.captured.setdefault(key, self.rel(path))

    def removing(self, path: Path) -> None:
        size = path.stat().st_size
        content = (size, file_sha256(path))
        known = self._keys.pop(path, None)
        if known is not None and known[0] == size:
            keys = known[1]
        elif path.name.endswith(CAPTURE_EXT):  # torn by a power cut since it was finished
            keys = read_keys(path)
        else:  # an arbitrary file: a dropped one's first line names it (``sim.files``)
            line = _first_line(path)
            keys = [line] if line.startswith(FILE_KEY_PREFIX) else []
        confirmed = content in self._net.finished
        self._deleted.add(content)
        rel = self.rel(path)
        self.books.deletions.append(Deletion(rel, trio.current_time(), keys, confirmed))
        self._trace.event("disk", f"delete {rel} confirmed={confirmed}")

    # ------------------------------------------------------------ sync steps

    def observe(
        self, file: SyncFile, before: fsm.FileState, event: fsm.Event, after: fsm.FileState
    ) -> None:
        """Every sync machine step: traced, and the backoff bound checked as it happens."""
        self.books.steps += 1
        if after.phase is not before.phase:
            self._trace.event(
                "sync",
                f"{file.relpath} {type(event).__name__} {before.phase.value}->{after.phase.value}"
                f" @{after.offset}",
            )
        if after.phase is fsm.Phase.BACKOFF:
            self.books.max_backoff_s = max(self.books.max_backoff_s, after.delay_s)
            if after.delay_s > MAX_DELAY_S:
                self.violate(
                    "5 backoff",
                    f"{file.relpath}: retry wait {after.delay_s:.1f} s exceeds one hour",
                )

    # ------------------------------------------------------------ retention log

    def retention_log(self) -> logging.Handler:
        """A handler for the ``ferry.retention`` logger: the deletions it reports."""
        return self._handler

    # ------------------------------------------------------------ the end

    def tags_kept(self, untagged: list[str], tag: str) -> None:
        """Guarantee 6: ``untagged`` (stored keys without the robot's ``tag``) must be empty."""
        if untagged:
            examples = sorted(untagged)[:5]
            self.violate(
                "6 tags kept",
                f"{len(untagged)} stored readings or files lack the data manager's tag "
                f"{tag!r}, e.g. {examples}",
            )

    def judge(self, stored: Counter[str], leftovers: list[str]) -> Tally:
        """Checks guarantees 1-5 at quiescence and returns the run's figures."""
        books = self.books
        tally = Tally(captured=len(books.captured))
        if self._accepted:
            examples = sorted(self._accepted)[:5]
            self.violate(
                "1 no loss",
                f"{len(self._accepted)} readings the writer accepted never reached a finished "
                f"file, and no power cut excuses them, e.g. {examples}",
            )
        for deletion in books.deletions:
            if deletion.confirmed:
                continue
            if deletion.rel in books.retention_logged:
                tally.deleted_by_policy += len(deletion.keys)
                continue
            self.violate(
                "3 delete after confirm",
                f"{deletion.rel} deleted at {deletion.time:.3f}s before the cloud finished it,"
                " and no retention deletion was logged for it",
            )
        policy_keys = {
            key
            for d in books.deletions
            if not d.confirmed and d.rel in books.retention_logged
            for key in d.keys
        }
        tally.duplicated = sum(count - 1 for count in stored.values() if count > 1)
        if tally.duplicated:
            examples = sorted(k for k, c in stored.items() if c > 1)[:5]
            self.violate(
                "2 no duplicates", f"{tally.duplicated} duplicate readings, e.g. {examples}"
            )
        lost = sorted(k for k in books.captured if k not in stored and k not in policy_keys)
        tally.delivered = sum(1 for k in books.captured if k in stored)
        tally.lost = len(lost)
        if lost:
            where = sorted({books.captured[k] for k in lost})[:3]
            self.violate(
                "1 no loss", f"{len(lost)} captured readings never reached the cloud, e.g. "
                f"{lost[:5]} from {where}",
            )  # fmt: skip
        net = self._net
        for content, sent in net.sent.items():
            size = content[0]
            allowed = size + net.interruptions[content] * self._chunk
            tally.resent_bytes += max(0, sent - size)
            if sent > allowed:
                self.violate(
                    "4 resume",
                    f"{net.labels.get(content, '?')}: {sent} bytes sent for a {size}-byte file "
                    f"with {net.interruptions[content]} interruptions (chunk {self._chunk})",
                )
        tally.interruptions = sum(net.interruptions.values())
        tally.max_backoff_s = books.max_backoff_s
        if leftovers:
            self.violate(
                "5 liveness",
                f"{len(leftovers)} files not synced after the network healed, e.g. {leftovers[:3]}",
            )
        return tally


@final
@dataclass
class Tally:
    """The run's figures, for the summary."""

    captured: int = 0
    delivered: int = 0
    deleted_by_policy: int = 0
    duplicated: int = 0
    lost: int = 0
    interruptions: int = 0
    resent_bytes: int = 0
    max_backoff_s: float = 0.0


@final
class _RetentionLog(logging.Handler):
    """Reads the retention actor's deletion lines: 'retention (reason): deleted PATH: …'."""

    def __init__(self, books: Books, checker: Checker) -> None:
        super().__init__(logging.WARNING)
        self._books = books
        self._checker = checker

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        msg = record.msg
        if (
            msg.startswith("retention (")
            and "): deleted " in msg
            and isinstance(args, tuple)
            and len(args) >= 2
        ):
            self._books.retention_logged.add(self._checker.rel(args[1]))  # type: ignore[arg-type]

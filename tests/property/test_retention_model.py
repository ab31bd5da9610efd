"""The retention policy (``actors.retention_policy.decide``) against a model capture directory.

A ``RuleBasedStateMachine`` keeps a plain model of one capture directory on a
small disk: collectors finish ``.capture`` files, sync takes files (in
progress), lets them go, uploads and deletes them or moves them to ``failed/``,
an open ``.prog`` grows, the disk's other usage moves (also exactly onto the
two thresholds), a config reload puts the size cap exactly at the directory's
size, time passes (also exactly to a file's age cap), and a retention check
runs ``decide`` on the model's listing (with ``failed/`` files and the
``.prog`` in it as traps) and applies its deletions to the model.

Guarantees checked at every check (docs/retention.md, the policy's docstring):

1. A file the sync actor holds (in progress) is never deleted.
2. Only finished ``.capture`` files of the directory are deleted (never
   ``failed/``, never the ``.prog``, never a file already gone), and each only
   under its reason's condition: the age cap for files older than the cap, the
   size cap while the directory is over the cap, disk full only when the disk
   is at least ``disk_usage_deletion_threshold`` used *and* the capture dir
   holds at least ``capture_dir_deletion_threshold`` of the used space (both
   judged after the caps' deletions).
3. Every deletion names a reason and is counted once: no path twice, and the
   model's per-reason counts equal the decisions' counts; every file ever
   finished is present, uploaded, failed or deleted, exactly one of these.
4. Liveness: when the disk-full condition holds and a deletable file remains,
   at least one file is deleted; and with no new files, repeated checks end
   the condition or run out of deletable files.
5. The choice is exactly the model's: age cap then size cap (oldest first),
   then the remaining candidates, in-progress ones removed *before* indexing,
   at indices 0, N, 2N, … in (time, path) order; plus the ``disk_full`` and
   ``pause_capture`` flags and the warnings.

The model compares usage with the thresholds in exact fractions (``9/10``, not
the float 0.9), as the docs state the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors.codec import CAPTURE_EXT, PROG_EXT, file_stem, stem_time_ns
from actors.ports import DiskStats
from actors.retention_policy import (
    CaptureFileInfo,
    Reason,
    RetentionDecision,
    RetentionSettings,
    decide,
)

CAP = Path("/data/capture")
COLLECTORS = (
    CAP / "rdk_component_sensor" / "a" / "Readings",
    CAP / "rdk_component_sensor" / "b" / "Readings",
    CAP / "rdk_component_camera" / "cam" / "ReadImage",
)
PROG = COLLECTORS[0] / f"2026-01-01T00_00_00.000000Z{PROG_EXT}"
SEC = 1_000_000_000
US = 1_000
T0 = 1_767_225_600 * SEC  # 2026-01-01T00:00:00Z
# Exact thresholds; the defaults (9/10 and 1/2) first, so failures shrink to them.
DISK_THRESHOLDS = ("9/10", "3/4", "1/2", "97/100", "1", "1/20")
DIR_THRESHOLDS = ("1/2", "3/10", "9/10", "1", "1/20")
RANK = {Reason.AGE_CAP: 0, Reason.SIZE_CAP: 1, Reason.DISK_FULL: 2}
NOTHING_DELETED = "nothing deleted"
NONE_DELETABLE = "no finished capture file can be deleted"
OVER_SIZE_CAP = "retention_max_capture_dir_bytes"


def failed_path(path: Path) -> Path:
    """Where sync moves a file it gives up on."""
    return CAP / "failed" / path.relative_to(CAP)


@dataclass
class Expected:
    """What the model says one check must do."""

    deletions: list[tuple[CaptureFileInfo, Reason]]
    disk_full: bool
    pause: bool
    warnings: set[str] = field(default_factory=set)


class RetentionAgainstModelDirectory(RuleBasedStateMachine):
    """One capture dir on a small disk, with sync and collectors at work around retention.

    Everything but ``decide`` is the model: ``files`` (finished capture files in
    the collectors' directories), ``failed`` (files sync moved to ``failed/``),
    the open ``.prog``'s bytes, what sync holds, the disk's other usage, the
    clock, and per-reason counts of what the model and the decisions deleted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.settings: RetentionSettings | None = None
        self.disk_thr = Fraction(0)
        self.dir_thr = Fraction(0)
        self.total = 0
        self.other = 0
        self.prog_bytes = 0
        self.now = T0
        self.files: dict[Path, CaptureFileInfo] = {}
        self.failed: dict[Path, CaptureFileInfo] = {}
        self.in_progress: set[Path] = set()
        self.finished_count = 0
        self.uploaded = 0
        self.moved_to_failed = 0
        self.model_counts = {r: [0, 0] for r in Reason}  # files, bytes
        self.decision_counts = {r: [0, 0] for r in Reason}
        self.broken = False  # a check failed: teardown must not pile a second failure on it

    # ------------------------------------------------------------ the disk

    @property
    def capture_bytes(self) -> int:
        """Every byte under the capture dir: finished, failed and the open .prog."""
        return (
            sum(f.size for f in self.files.values())
            + sum(f.size for f in self.failed.values())
            + self.prog_bytes
        )

    def usage(self) -> DiskStats:
        used = self.other + self.capture_bytes
        return DiskStats(total=self.total, used=used, free=self.total - used)

    def room(self) -> int:
        return self.total - self.other - self.capture_bytes

    def disk_full_holds(self, used: int, capture_bytes: int) -> bool:
        """The documented rule, in exact arithmetic: both shares at least their thresholds."""
        if self.total == 0 or used == 0:
            return False
        return (
            Fraction(used, self.total) >= self.disk_thr
            and Fraction(capture_bytes, used) >= self.dir_thr
        )

    def disk_over(self, used: int) -> bool:
        return self.total > 0 and Fraction(used, self.total) >= self.disk_thr

    def set_other(self, other: int) -> None:
        self.other = max(0, min(other, self.total - self.capture_bytes))

    # ------------------------------------------------------------ setup

    @initialize(
        every_nth=st.integers(1, 6),
        disk_thr=st.sampled_from(DISK_THRESHOLDS),
        dir_thr=st.sampled_from(DIR_THRESHOLDS),
        max_age_s=st.none() | st.integers(0, 120),
        max_bytes=st.none() | st.integers(0, 4_000),
        min_free=st.just(0) | st.integers(0, 3_000),
        total=st.sampled_from([4_000, 10_000, 2_000]),
        other_permille=st.integers(0, 1000),
    )
    def configure(
        self, every_nth, disk_thr, dir_thr, max_age_s, max_bytes, min_free, total, other_permille
    ):
        self.disk_thr = Fraction(disk_thr)
        self.dir_thr = Fraction(dir_thr)
        self.settings = RetentionSettings(
            CAP,
            disk_usage_threshold=float(self.disk_thr),
            capture_dir_threshold=float(self.dir_thr),
            every_nth=every_nth,
            max_capture_dir_bytes=max_bytes,
            max_age_ns=None if max_age_s is None else max_age_s * SEC,
            min_free_bytes=min_free,
        )
        self.total = total
        self.other = total * other_permille // 1000

    # ------------------------------------------------------------ collectors and the writer

    @rule(
        files=st.lists(
            st.tuples(
                st.integers(0, len(COLLECTORS) - 1),
                st.integers(1, 700),
                st.integers(-3, 40).map(lambda n: n * 10),  # coarse: equal times are common
            ),
            min_size=1,
            max_size=8,
        )
    )
    def files_finished(self, files):
        """Collectors finish files of ``size`` bytes, each captured ``age_s`` ago (negative:
        the clock stepped back since). A file that does not fit is not written."""
        for collector, size, age_s in files:
            if size > self.room():
                continue  # ENOSPC: the writer retries later, nothing reaches the disk
            t = self.now - age_s * SEC
            t -= t % US  # names, and so listed times, have microseconds
            # The writer moves a taken name on by a microsecond, as here.
            while (path := COLLECTORS[collector] / f"{file_stem(t)}{CAPTURE_EXT}") in self.files:
                t += US
            assert stem_time_ns(path.name.removesuffix(CAPTURE_EXT)) == t
            self.files[path] = CaptureFileInfo(path, size, t)
            self.finished_count += 1

    @rule(size=st.integers(0, 2_000))
    def prog_changes(self, size):
        """The open .prog grows (or is finished and a new one starts small)."""
        self.prog_bytes = max(0, min(size, self.prog_bytes + self.room()))

    # ------------------------------------------------------------ sync

    def _pick(self, paths, i: int) -> Path:
        ordered = sorted(paths)
        return ordered[i % len(ordered)]

    @precondition(lambda self: len(self.files) > len(self.in_progress))
    @rule(i=st.integers(0, 63))
    def sync_takes(self, i):
        self.in_progress.add(self._pick(self.files.keys() - self.in_progress, i))

    @precondition(lambda self: self.in_progress)
    @rule(i=st.integers(0, 63))
    def sync_lets_go(self, i):
        """An upload is interrupted: the file is an ordinary candidate again."""
        self.in_progress.discard(self._pick(self.in_progress, i))

    @precondition(lambda self: self.in_progress)
    @rule(i=st.integers(0, 63))
    def sync_uploads_and_deletes(self, i):
        path = self._pick(self.in_progress, i)
        self.in_progress.discard(path)
        del self.files[path]
        self.uploaded += 1

    @precondition(lambda self: self.in_progress)
    @rule(i=st.integers(0, 63))
    def sync_moves_to_failed(self, i):
        path = self._pick(self.in_progress, i)
        self.in_progress.discard(path)
        info = self.files.pop(path)
        self.failed[failed_path(path)] = CaptureFileInfo(failed_path(path), info.size, info.time_ns)
        self.moved_to_failed += 1

    # ------------------------------------------------------------ the rest of the disk, time

    @rule(permille=st.integers(0, 1000))
    def other_usage_changes(self, permille):
        self.set_other((self.total - self.capture_bytes) * permille // 1000)

    @rule(delta=st.integers(-2, 2))
    def disk_usage_at_its_threshold(self, delta):
        """Used space exactly at ``disk_thr * total`` (give or take a byte or two)."""
        self.set_other(math.ceil(self.disk_thr * self.total) - self.capture_bytes + delta)

    @rule(delta=st.integers(-2, 2))
    def capture_share_at_its_threshold(self, delta):
        """The capture dir's share of the used space exactly at ``dir_thr`` (give or take)."""
        self.set_other(math.floor(self.capture_bytes / self.dir_thr) - self.capture_bytes + delta)

    @precondition(lambda self: self.settings is not None)
    @rule(delta=st.integers(-1, 1))
    def size_cap_reloaded_at_the_capture_dir(self, delta):
        """A config reload sets the size cap exactly at the capture dir's size (+- 1)."""
        assert self.settings is not None
        cap = max(0, self.capture_bytes + delta)
        self.settings = replace(self.settings, max_capture_dir_bytes=cap)

    @rule(seconds=st.integers(0, 200))
    def time_passes(self, seconds):
        self.now += seconds * SEC

    @precondition(
        lambda self: (
            self.settings is not None and self.settings.max_age_ns is not None and self.files
        )
    )
    @rule(i=st.integers(0, 63), delta=st.integers(-1, 1))
    def clock_at_a_files_age_cap(self, i, delta):
        """The wall clock reads exactly when a file reaches the age cap (give or take a ns);
        it may step back to get there."""
        assert self.settings is not None
        max_age_ns = self.settings.max_age_ns
        assert max_age_ns is not None
        f = self.files[self._pick(self.files, i)]
        self.now = f.time_ns + max_age_ns + delta

    # ------------------------------------------------------------ the model's decision

    def expected(self) -> Expected:
        """The documented policy, written out plainly over the model."""
        s = self.settings
        assert s is not None
        usage = self.usage()
        capture = self.capture_bytes
        # In-progress files leave before any rule indexes the list; failed/ and .prog never enter.
        candidates = sorted(
            (f for f in self.files.values() if f.path not in self.in_progress),
            key=lambda f: (f.time_ns, f.path),
        )
        aged = []
        if s.max_age_ns is not None:
            aged = [f for f in candidates if self.now - f.time_ns > s.max_age_ns]
        rest = [f for f in candidates if f not in aged]
        left = capture - sum(f.size for f in aged)
        sized = []
        if s.max_capture_dir_bytes is not None:
            for f in rest:
                if left <= s.max_capture_dir_bytes:
                    break
                sized.append(f)
                left -= f.size
        remaining = rest[len(sized) :]
        cap_freed = sum(f.size for f in aged + sized)
        fires = self.disk_full_holds(usage.used - cap_freed, capture - cap_freed)
        thinned = [f for i, f in enumerate(remaining) if i % s.every_nth == 0] if fires else []
        deletions = [(f, Reason.AGE_CAP) for f in aged]
        deletions += [(f, Reason.SIZE_CAP) for f in sized]
        deletions += [(f, Reason.DISK_FULL) for f in thinned]
        freed = sum(f.size for f, _ in deletions)
        warnings = set()
        if s.max_capture_dir_bytes is not None and left > s.max_capture_dir_bytes:
            warnings.add(OVER_SIZE_CAP)
        if fires and not thinned:
            warnings.add(NONE_DELETABLE)
        if self.disk_over(usage.used - cap_freed) and not fires:
            warnings.add(NOTHING_DELETED)
        pause = s.min_free_bytes > 0 and usage.free + freed < s.min_free_bytes
        return Expected(deletions, fires, pause, warnings)

    # ------------------------------------------------------------ the check

    @precondition(lambda self: self.settings is not None)
    @rule(reverse=st.booleans())
    def retention_check(self, reverse):
        self.run_check(reverse=reverse)

    def run_check(self, *, reverse: bool) -> RetentionDecision:
        s = self.settings
        assert s is not None
        usage = self.usage()
        capture = self.capture_bytes
        # The listing holds traps too: failed/ files and the open .prog must be ignored.
        listing = [*self.files.values(), *self.failed.values()]
        if self.prog_bytes:
            listing.append(CaptureFileInfo(PROG, self.prog_bytes, self.now))
        if reverse:
            listing.reverse()
        self.broken = True
        expected = self.expected()
        got = decide(s, usage, listing, capture, frozenset(self.in_progress), self.now)

        self.check_safety(got, usage, capture)
        self.check_liveness(got, usage, capture)
        # The exact choice: which files, in which order, for which reason.
        assert [(d.file, d.reason) for d in got.deletions] == expected.deletions
        assert got.disk_full == expected.disk_full
        assert got.pause_capture == expected.pause
        if expected.warnings:
            for part in expected.warnings:
                assert part in got.warning, (part, got.warning)
        else:
            assert got.warning == ""

        for f, reason in expected.deletions:
            self.model_counts[reason][0] += 1
            self.model_counts[reason][1] += f.size
        for d in got.deletions:
            self.decision_counts[d.reason][0] += 1
            self.decision_counts[d.reason][1] += d.file.size
            del self.files[d.file.path]  # present: check_safety made sure
        self.broken = False
        return got

    def check_safety(self, got: RetentionDecision, usage: DiskStats, capture: int) -> None:
        """Guarantees 1-3 for one decision, deletion by deletion."""
        s = self.settings
        assert s is not None
        cap_freed = sum(d.file.size for d in got.deletions if d.reason is not Reason.DISK_FULL)
        seen: set[Path] = set()
        freed = 0
        previous: tuple[int, int, Path] | None = None
        for d in got.deletions:
            path = d.file.path
            assert isinstance(d.reason, Reason), d
            assert path not in seen, f"{path} deleted twice in one pass"
            seen.add(path)
            assert path not in self.in_progress, f"deleted {path}, which sync is uploading"
            assert self.files.get(path) == d.file, (
                f"deleted {path}: not a finished capture file of the dir (failed/, .prog or gone)"
            )
            if d.reason is Reason.AGE_CAP:
                assert s.max_age_ns is not None, "age-cap deletion without an age cap"
                assert self.now - d.file.time_ns > s.max_age_ns, f"{path} is not over the age cap"
            elif d.reason is Reason.SIZE_CAP:
                assert s.max_capture_dir_bytes is not None, "size-cap deletion without a size cap"
                assert capture - freed > s.max_capture_dir_bytes, "size cap deleted past the cap"
            else:
                assert self.disk_full_holds(usage.used - cap_freed, capture - cap_freed), (
                    "disk-full deletion while a threshold does not hold"
                )
            # Age cap, then size cap, then disk full; each oldest first.
            key = (RANK[d.reason], d.file.time_ns, path)
            assert previous is None or key > previous, f"out of order: {d}"
            previous = key
            freed += d.file.size
        assert got.disk_full == self.disk_full_holds(usage.used - cap_freed, capture - cap_freed)

    def check_liveness(self, got: RetentionDecision, usage: DiskStats, capture: int) -> None:
        """Guarantee 4: a disk-full condition with something deletable deletes something."""
        cap_freed = sum(d.file.size for d in got.deletions if d.reason is not Reason.DISK_FULL)
        deleted = {d.file.path for d in got.deletions}
        deletable = self.files.keys() - self.in_progress - deleted
        if self.disk_full_holds(usage.used - cap_freed, capture - cap_freed) and deletable:
            assert any(d.reason is Reason.DISK_FULL for d in got.deletions), (
                "disk full and deletable files remain, yet nothing deleted"
            )

    # ------------------------------------------------------------ invariants

    @invariant()
    def every_file_is_accounted_for_once(self):
        assert self.model_counts == self.decision_counts
        deleted = sum(files for files, _ in self.decision_counts.values())
        assert self.finished_count == (
            len(self.files) + self.uploaded + self.moved_to_failed + deleted
        )
        assert self.in_progress <= self.files.keys()
        assert 0 <= self.usage().used <= self.total

    def teardown(self):
        """Liveness over passes: with no new files, checks end the disk-full condition."""
        if self.settings is None or self.broken:
            return
        for _ in range(len(self.files) + 2):
            if not self.run_check(reverse=False).disk_full:
                return
        assert not self.files.keys() - self.in_progress, "disk full forever with deletable files"


RetentionAgainstModelDirectory.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    # Each step's work counts as data generation in a state machine; a loaded CI box is slow.
    suppress_health_check=[HealthCheck.too_slow],
)
# A few seconds: marked slow like tests/sync/test_fsm.py.
TestRetentionAgainstModelDirectory = pytest.mark.slow(RetentionAgainstModelDirectory.TestCase)

"""The pure retention policy (issue 6): disk-full thinning, age and size caps, capture pause.

Table-driven cases pin the documented examples (spec §5); Hypothesis properties
check the safety guarantees on arbitrary listings: never a file being uploaded,
never anything outside the finished capture files of the capture dir, exactly
every Nth remaining candidate when the disk is full, caps oldest-first and no
further than needed, no duplicates, and no dependence on listing order.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import codec
from actors.ports import DiskStats
from actors.retention_policy import (
    CAPTURE_EXT,
    KEPT_DIRS,
    NS_PER_HOUR,
    CaptureFileInfo,
    Deletion,
    Reason,
    RetentionDecision,
    RetentionSettings,
    age_ns_from_hours,
    decide,
    deletion_candidates,
    is_deletable,
    needs_listing,
)

CAP = Path("/data/capture")
COLLECTOR = CAP / "rdk_component_camera" / "cam" / "ReadImage"
T0 = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
SEC = 1_000_000_000
PROPS = settings(max_examples=50, deadline=None)  # 8 properties in about 1.5 s


def capture(i: int, size: int = 100, directory: Path = COLLECTOR) -> CaptureFileInfo:
    """The i-th finished capture file, one second apart, named as the writer names it."""
    t = T0 + i * SEC
    return CaptureFileInfo(directory / f"{codec.file_stem(t)}{CAPTURE_EXT}", size, t)


TEN = [capture(i) for i in range(10)]
NOW = T0 + 100 * SEC


def disk(used_pct: int, total: int = 10_000) -> DiskStats:
    used = total * used_pct // 100
    return DiskStats(total=total, used=used, free=total - used)


# ---------------------------------------------------------------- table


@dataclass(frozen=True)
class Case:
    """One pass: inputs, and the expected (index into `files`, reason) deletions."""

    files: list[CaptureFileInfo]
    usage: DiskStats
    capture_dir_bytes: int
    expected: list[tuple[int, Reason]]
    settings: dict[str, int | float | None] = field(default_factory=dict)
    in_progress: tuple[int, ...] = ()
    disk_full: bool = False
    warning: tuple[str, ...] = ()  # substrings; () means no warning at all
    pause: bool = False


D, A, S = Reason.DISK_FULL, Reason.AGE_CAP, Reason.SIZE_CAP
STRAYS = [
    capture(0, directory=CAP / "failed" / "rdk_component_camera" / "cam" / "ReadImage"),
    capture(1, directory=Path("/data/capture2/x")),  # a sibling whose name extends CAP's
    capture(2, directory=Path("/elsewhere")),
    capture(3, directory=COLLECTOR / "failed"),  # failed/ at any depth is kept
    CaptureFileInfo(COLLECTOR / "2026-01-01T00_00_04.000000Z.prog", 100, T0 + 4 * SEC),
    CaptureFileInfo(COLLECTOR / "notes.capture.txt", 100, T0 + 5 * SEC),
    CaptureFileInfo(CAP / ".." / "etc" / "x.capture", 100, T0 + 6 * SEC),
]

CASES = {
    # spec §5: 10 files, N=5 -> the 1st and 6th, when the disk and the capture dir are full.
    "disk_full_10_files_n5_deletes_1st_and_6th": Case(
        TEN, disk(95), 9_000, [(0, D), (5, D)], disk_full=True
    ),
    "listing_order_does_not_matter": Case(
        TEN[::-1], disk(95), 9_000, [(9, D), (4, D)], disk_full=True
    ),
    "n1_deletes_every_candidate": Case(
        TEN, disk(95), 9_000, [(i, D) for i in range(10)], {"every_nth": 1}, disk_full=True
    ),
    "exactly_at_both_thresholds_fires": Case(
        TEN, disk(90), 4_500, [(0, D), (5, D)], disk_full=True
    ),
    "below_disk_threshold_nothing": Case(TEN, disk(89), 9_000, []),
    "disk_full_small_capture_dir_warns_and_keeps_all": Case(
        TEN, disk(95), 950, [], warning=("95.0 %", "90.0 %", "10.0 %", "50.0 %", "nothing deleted")
    ),
    # In-progress files leave the list before indexing: the stride is over deletable files.
    "in_progress_excluded_before_indexing": Case(
        TEN, disk(95), 9_000, [(1, D), (6, D)], in_progress=(0,), disk_full=True
    ),
    "in_progress_in_the_middle": Case(
        TEN, disk(95), 9_000, [(0, D), (6, D)], in_progress=(3,), disk_full=True
    ),
    "disk_full_but_everything_in_progress_warns": Case(
        TEN[:2],
        disk(95),
        9_000,
        [],
        in_progress=(0, 1),
        disk_full=True,
        warning=("no finished capture file",),
    ),
    "failed_outside_and_non_capture_files_ignored": Case(
        STRAYS + TEN, disk(95), 9_000, [(7, D), (12, D)], disk_full=True
    ),
    "age_cap_deletes_everything_older_oldest_first": Case(
        TEN, disk(50), 1_000, [(0, A), (1, A), (2, A)], {"max_age_ns": 98 * SEC - 1}
    ),
    "age_exactly_at_cap_is_kept": Case(TEN, disk(50), 1_000, [(0, A)], {"max_age_ns": 99 * SEC}),
    "size_cap_deletes_oldest_until_within": Case(
        TEN, disk(50), 1_000, [(0, S), (1, S), (2, S)], {"max_capture_dir_bytes": 750}
    ),
    "size_cap_stops_exactly_at_cap": Case(
        TEN, disk(50), 1_000, [(0, S), (1, S)], {"max_capture_dir_bytes": 800}
    ),
    "size_cap_within_cap_nothing": Case(TEN, disk(50), 1_000, [], {"max_capture_dir_bytes": 1_000}),
    "size_cap_unreachable_warns": Case(
        TEN[:2],
        disk(50),
        1_000,
        [(0, S)],
        {"max_capture_dir_bytes": 500},
        in_progress=(1,),
        warning=("retention_max_capture_dir_bytes",),
    ),
    # Age takes 0-1, size takes 2, disk full thins the rest (3..9) from its first: 3 and 8.
    "combined_age_then_size_then_disk_full": Case(
        TEN,
        DiskStats(total=20_000, used=19_900, free=100),
        10_000,
        [(0, A), (1, A), (2, S), (3, D), (8, D)],
        {"max_age_ns": 99 * SEC - 1, "max_capture_dir_bytes": 9_750, "capture_dir_threshold": 0.3},
        disk_full=True,
    ),
    # The caps' deletions count as freed before the disk-full rule is judged.
    "caps_that_free_enough_prevent_disk_full": Case(
        TEN,
        DiskStats(total=10_000, used=9_050, free=950),
        9_000,
        [(0, A), (1, A)],
        {"max_age_ns": 99 * SEC - 1},
    ),
    "pause_when_free_below_floor": Case(
        TEN, disk(50), 1_000, [], {"min_free_bytes": 5_001}, pause=True
    ),
    "no_pause_when_free_at_floor": Case(TEN, disk(50), 1_000, [], {"min_free_bytes": 5_000}),
    "deletions_count_toward_the_floor": Case(
        TEN, disk(50), 1_000, [(0, A)], {"min_free_bytes": 5_100, "max_age_ns": 99 * SEC}
    ),
    "deletions_not_enough_still_pause": Case(
        TEN,
        disk(50),
        1_000,
        [(0, A)],
        {"min_free_bytes": 5_101, "max_age_ns": 99 * SEC},
        pause=True,
    ),
    "empty_disk_no_division_by_zero": Case(TEN, DiskStats(0, 0, 0), 0, []),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_table(case: Case):
    """Each documented example gives exactly its deletions, reasons, flags and warning."""
    # The table's kwargs are one loose dict type, checked by the dataclass at run time.
    s = RetentionSettings(CAP, **case.settings)  # type: ignore[arg-type]
    busy = {case.files[i].path for i in case.in_progress}
    got = decide(s, case.usage, case.files, case.capture_dir_bytes, busy, NOW)
    assert [(d.file, d.reason) for d in got.deletions] == [
        (case.files[i], r) for i, r in case.expected
    ]
    assert got.disk_full is case.disk_full
    assert got.pause_capture is case.pause
    if case.warning:
        for part in case.warning:
            assert part in got.warning
    else:
        assert got.warning == ""


def test_a_path_listed_twice_is_deleted_once_whatever_the_order():
    """Never a file twice: duplicates in the listing collapse, deterministically."""
    dupe = replace(TEN[0], size=1)
    s = RetentionSettings(CAP, every_nth=1)
    got = [decide(s, disk(95), fs, 9_000, (), NOW) for fs in ([*TEN, dupe], [dupe, *TEN])]
    assert got[0] == got[1]
    assert len({d.file.path for d in got[0].deletions}) == len(got[0].deletions) == 10


def test_deletion_describe_names_the_rule():
    """Unsynced data deleted by a cap is logged as such."""
    line = Deletion(TEN[0], Reason.SIZE_CAP).describe()
    assert str(TEN[0].path) in line
    assert "size_cap" in line
    assert "unsynced" in line


def test_decision_reports_freed_bytes():
    """The two deleted 100-byte files are reported as freed."""
    got = decide(RetentionSettings(CAP), disk(95), TEN, 9_000, (), NOW)
    assert got.freed_bytes == 200


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"every_nth": 0}, "delete_every_nth_when_disk_full"),
        ({"disk_usage_threshold": 0.0}, "disk_usage_deletion_threshold"),
        ({"disk_usage_threshold": 1.01}, "disk_usage_deletion_threshold"),
        ({"disk_usage_threshold": float("nan")}, "disk_usage_deletion_threshold"),
        ({"capture_dir_threshold": -0.5}, "capture_dir_deletion_threshold"),
        ({"capture_dir_threshold": 2.0}, "capture_dir_deletion_threshold"),
        ({"max_capture_dir_bytes": -1}, "retention_max_capture_dir_bytes"),
        ({"max_age_ns": -1}, "retention_max_age_hours"),
        ({"min_free_bytes": -1}, "min_free_bytes"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_key(kwargs: dict[str, float], key: str):
    with pytest.raises(ValueError, match=key):
        RetentionSettings(CAP, **kwargs)  # type: ignore[arg-type]  # kwargs: one loose dict type


def test_thresholds_of_exactly_one_are_valid():
    """(0, 1] is closed at 1: a threshold of 1.0 is accepted."""
    RetentionSettings(CAP, disk_usage_threshold=1.0, capture_dir_threshold=1.0, every_nth=1)


def test_negative_capture_dir_bytes_is_rejected():
    with pytest.raises(ValueError, match="capture_dir_bytes"):
        decide(RetentionSettings(CAP), disk(95), TEN, -1, (), NOW)


@pytest.mark.parametrize(
    ("hours", "expected"), [(None, None), (0.0, None), (1.0, NS_PER_HOUR), (1.5, 5_400 * SEC)]
)
def test_age_ns_from_hours(hours: float | None, expected: int | None):
    assert age_ns_from_hours(hours) == expected


def test_the_layout_constants_agree_with_the_codec():
    """The policy's copies (kept to stay asyncio-free) match actors.codec's layout."""
    assert CAPTURE_EXT == codec.CAPTURE_EXT
    assert KEPT_DIRS == codec.SKIPPED_DIRS
    assert codec.FAILED_DIR in KEPT_DIRS


PURE_IMPORTS = {"__future__", "dataclasses", "enum", "typing", "collections", "pathlib", "actors"}


def test_the_policy_is_a_pure_core():
    """STYLE.md §1: no trio/asyncio, no I/O modules; the only project import is the ports."""
    source = Path(__file__).resolve().parents[2].joinpath("actors/retention_policy.py")
    roots: set[str] = set()
    project: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or ".").split(".")[0])
            if (node.module or "").startswith("actors"):
                project.add(node.module or "")
    assert roots <= PURE_IMPORTS, roots - PURE_IMPORTS
    assert project <= {"actors.ports"}


# ---------------------------------------------------------------- properties

# Half the pool is deletable (so the stride and the caps have work), half are traps.
NAMES = ["f", "g.a", "a-b", "z", "2026-01-01T00_00_00.000000Z", "x y", "0", "~"]
DELETABLE = [
    d / f"{n}{CAPTURE_EXT}" for d in (COLLECTOR, CAP / "a", CAP / "tag=x" / "b", CAP) for n in NAMES
]
TRAPS = [
    CAP / "failed" / "a" / "f.capture",  # failed/ at the top
    CAP / "a" / "failed" / "f.capture",  # failed/ deeper down
    CAP / "failed" / "g.capture",
    CAP / "datasetUpload" / "f.capture",
    Path("/data/capture2/f.capture"),  # a sibling whose name extends CAP's
    Path("/data/capture.capture"),
    Path("/data/f.capture"),
    Path("/elsewhere/capture/f.capture"),
    CAP / ".." / "other" / "f.capture",
    COLLECTOR / "f.prog",
    COLLECTOR / "f.capture.tmp",
    COLLECTOR / "f.dat",
    CAP / "a" / "capture",
    CAP / "a" / "f",
]
POOL = DELETABLE + TRAPS * 2
SIZES, TIMES = 201, 16
CODES = len(POOL) * SIZES * TIMES
MIX = 1_000_003  # a prime that does not divide CODES: code -> code * MIX % CODES is a bijection


@st.composite
def listings(draw: st.DrawFn) -> list[CaptureFileInfo]:
    """Capture-like files in and around CAP, with unique paths and many equal times.

    Each file is one integer (pool index, size and time packed), which keeps
    generation fast. Hypothesis favours small integers, so the code is spread
    over its range by a bijection before unpacking; 0 still means the first
    pool path, size 0, T0.
    """
    n = draw(st.integers(0, 16))  # st.lists alone makes mostly short lists
    codes = draw(st.lists(st.integers(0, CODES - 1), min_size=n, max_size=n))
    files: dict[Path, CaptureFileInfo] = {}
    for code in codes:
        rest, t = divmod(code * MIX % CODES, TIMES)
        i, size = divmod(rest, SIZES)
        files.setdefault(POOL[i], CaptureFileInfo(POOL[i], size, T0 + t * SEC))
    return list(files.values())


@dataclass(frozen=True)
class Scenario:
    settings: RetentionSettings
    usage: DiskStats
    files: list[CaptureFileInfo]
    capture_dir_bytes: int
    in_progress: frozenset[Path]

    def run(self, files: list[CaptureFileInfo] | None = None) -> RetentionDecision:
        return decide(
            self.settings,
            self.usage,
            self.files if files is None else files,
            self.capture_dir_bytes,
            self.in_progress,
            NOW,
        )


THRESHOLDS = st.sampled_from([0.05, 0.3, 0.5, 0.75, 0.9, 0.97, 1.0])


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    files = draw(listings())
    mask = draw(st.integers(0, 2 ** len(files) - 1))  # which files sync is uploading
    busy = {f.path for bit, f in enumerate(files) if mask >> bit & 1}
    # One draw per knob keeps generation fast; a negative draw (about 1 in 3) means no cap.
    max_bytes = draw(st.integers(-2_500, 5_000))
    max_age = draw(st.integers(-20, 40))  # ages are 85-100 s: from all old to none
    s = RetentionSettings(
        CAP,
        disk_usage_threshold=draw(THRESHOLDS),
        capture_dir_threshold=draw(THRESHOLDS),
        every_nth=draw(st.integers(1, 7)),
        max_capture_dir_bytes=None if max_bytes < 0 else max_bytes,
        max_age_ns=None if max_age < 0 else (80 + max_age // 2) * SEC,
        min_free_bytes=draw(st.integers(0, 6_000)),
    )
    # The disk is built around the capture dir, so both shares span their thresholds.
    listed = sum(f.size for f in files)
    capture_dir_bytes = draw(st.integers(listed // 2, listed + 1_000))
    used = capture_dir_bytes + draw(st.integers(0, 3_000))
    total = used + draw(st.integers(0, 1_500))
    return Scenario(
        s, DiskStats(total, used, total - used), files, capture_dir_bytes, frozenset(busy)
    )


def in_capture_dir(path: Path) -> bool:
    """The oracle for 'a finished capture file of the capture dir', written as string checks."""
    text = path.as_posix()
    prefix = CAP.as_posix() + "/"
    rel = text[len(prefix) :].split("/") if text.startswith(prefix) else None
    return (
        rel is not None
        and rel[-1].endswith(".capture")
        and not {"failed", "datasetUpload", ".."} & set(rel)
    )


def oracle_candidates(sc: Scenario) -> list[CaptureFileInfo]:
    keep = [f for f in sc.files if in_capture_dir(f.path) and f.path not in sc.in_progress]
    return sorted(keep, key=lambda f: (f.time_ns, f.path))


def by_reason(decision: RetentionDecision, reason: Reason) -> list[CaptureFileInfo]:
    return [d.file for d in decision.deletions if d.reason is reason]


@PROPS
@given(scenarios())
def test_never_deletes_a_file_being_uploaded(sc: Scenario):
    """Guarantee: no file in `in_progress` (being uploaded by sync) is ever deleted."""
    assert not {d.file.path for d in sc.run().deletions} & sc.in_progress


@PROPS
@given(scenarios())
def test_never_deletes_outside_capture_dir_under_failed_or_a_non_capture_file(sc: Scenario):
    """Guarantee: only `.capture` files strictly inside CAP, outside failed/ and datasetUpload/."""
    for d in sc.run().deletions:
        assert in_capture_dir(d.file.path), d
        assert is_deletable(d.file.path, CAP)


@PROPS
@given(scenarios())
def test_candidates_are_the_deletable_files_in_time_order(sc: Scenario):
    """Guarantee: the candidate list is the deletable files by (time, path), busy ones removed."""
    assert deletion_candidates(CAP, sc.files, sc.in_progress) == oracle_candidates(sc)


@PROPS
@given(scenarios())
def test_disk_full_deletes_exactly_every_nth_remaining_candidate_in_order(sc: Scenario):
    """Guarantee: disk-full deletions are exactly remaining[0::N], in time order (spec §5)."""
    got = sc.run()
    capped = {d.file.path for d in got.deletions if d.reason is not Reason.DISK_FULL}
    remaining = [f for f in oracle_candidates(sc) if f.path not in capped]
    expected = remaining[:: sc.settings.every_nth] if got.disk_full else []
    assert by_reason(got, Reason.DISK_FULL) == expected


@PROPS
@given(scenarios())
def test_without_caps_disk_full_fires_exactly_on_the_documented_rule(sc: Scenario):
    """Guarantee: the rule fires iff used >= threshold and capture/used >= its threshold."""
    s = replace(sc.settings, max_capture_dir_bytes=None, max_age_ns=None)
    got = decide(s, sc.usage, sc.files, sc.capture_dir_bytes, sc.in_progress, NOW)
    used = sc.usage.used
    share = sc.capture_dir_bytes / used if used else 0.0
    assert got.disk_full == (
        sc.usage.used_fraction >= s.disk_usage_threshold and share >= s.capture_dir_threshold
    )
    if sc.usage.used_fraction >= s.disk_usage_threshold and not got.disk_full:
        assert "nothing deleted" in got.warning


@PROPS
@given(scenarios())
def test_caps_delete_oldest_first_and_stop_as_soon_as_under(sc: Scenario):
    """Guarantee: age cap takes every file over age; size cap the oldest, no more than needed."""
    got = sc.run()
    s = sc.settings
    candidates = oracle_candidates(sc)
    aged = by_reason(got, Reason.AGE_CAP)
    if s.max_age_ns is None:
        assert aged == []
    else:
        assert aged == [f for f in candidates if NOW - f.time_ns > s.max_age_ns]
    rest = [f for f in candidates if f not in aged]
    sized = by_reason(got, Reason.SIZE_CAP)
    assert sized == rest[: len(sized)]  # a prefix: the oldest
    if s.max_capture_dir_bytes is None:
        assert sized == []
        return
    left = sc.capture_dir_bytes - sum(f.size for f in aged + sized)
    assert left <= s.max_capture_dir_bytes or len(sized) == len(rest)  # under, or nothing left
    if sized:  # one fewer would not have been enough
        assert left + sized[-1].size > s.max_capture_dir_bytes


@PROPS
@given(scenarios())
def test_deletions_are_unique_and_pause_follows_the_floor(sc: Scenario):
    """Guarantee: no file is deleted twice; pause iff free + freed < min_free_bytes."""
    got = sc.run()
    paths = [d.file.path for d in got.deletions]
    assert len(paths) == len(set(paths))
    floor = sc.settings.min_free_bytes
    assert got.pause_capture == (floor > 0 and sc.usage.free + got.freed_bytes < floor)


@PROPS
@given(scenarios(), st.integers(0, 2**32))
def test_decide_is_deterministic_under_permutation_of_files(sc: Scenario, seed: int):
    """Guarantee: the decision depends on the set of files, not on the listing order."""
    shuffled = list(sc.files)
    random.Random(seed).shuffle(shuffled)  # one draw, not one per swap: keeps the test fast
    assert sc.run(shuffled) == sc.run()


@given(scenarios())
def test_a_check_that_skips_the_listing_decides_exactly_as_one_that_lists(sc: Scenario):
    """``needs_listing`` false: no rule could use the files, so deciding on none is the same."""
    if needs_listing(sc.settings, sc.usage):
        return
    no_listing = decide(sc.settings, sc.usage, [], 0, sc.in_progress, NOW)
    assert no_listing == sc.run()


@pytest.mark.parametrize(
    ("changes", "used_pct", "needed"),
    [
        ({}, 89, False),
        ({}, 90, True),
        ({"max_age_ns": NS_PER_HOUR}, 10, True),
        ({"max_capture_dir_bytes": 10**9}, 10, True),
        ({"min_free_bytes": 10**9}, 10, False),  # the pause needs only the free bytes
    ],
)
def test_only_caps_or_a_disk_at_its_threshold_need_the_listing(
    changes: dict[str, int], used_pct: int, needed: bool
):
    settings = RetentionSettings(CAP, **changes)  # type: ignore[arg-type]
    assert needs_listing(settings, disk(used_pct)) is needed

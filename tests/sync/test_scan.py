"""Sync walker guarantees: what is ready, in which order, each file once, and a walk that
survives a changing tree.

The pure rules (``file_kind``, ``is_ready``, ``path_labels``) are checked without a
disk; the walk runs on real temp directories through ``OsFileSystem`` and
``InlineRunner``, with a fixed fake wall clock for file ages.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import InlineRunner
from actors.ports import DirEntry, FileKind, SyncFile
from actors.ratelimit import RateLimitedLog
from actors.sync import scan
from actors.sync.future_mtimes import FutureMtimes
from actors.sync.scan import (
    ScanRules,
    file_kind,
    is_ready,
    merge_tags,
    path_labels,
    ready_file,
    walk_ready,
)
from tests.sync.test_pure_modules import FORBIDDEN, imported_roots

T0 = 1_763_000_000_000_000_000
SECOND = 1_000_000_000
MIN_AGE = 10 * SECOND
GUARD_S = 60


class FakeWallClock:
    """A wall clock that says what the test sets."""

    def __init__(self, now_ns: int = T0) -> None:
        self.now = now_ns

    def now_ns(self) -> int:
        return self.now


class ListingFS:
    """The real disk, recording each ``list_dir`` and failing chosen ones."""

    def __init__(self, fail: dict[Path, OSError] | None = None) -> None:
        self._os = OsFileSystem()
        self.fail = fail or {}
        self.listed: list[Path] = []

    def list_dir(self, path: Path) -> list[DirEntry]:
        self.listed.append(path)
        if path in self.fail:
            raise self.fail[path]
        return self._os.list_dir(path)

    def __getattr__(self, name: str):
        return getattr(self._os, name)


def put(path: Path, data: bytes = b"data", *, age_ns: int = 3600 * SECOND) -> Path:
    """Creates ``path`` (and its parents) last modified ``age_ns`` before T0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(T0 - age_ns, T0 - age_ns))
    return path


def rules_for(*capture_dirs: Path, extra: tuple[Path, ...] = (), tags=("dm",)) -> ScanRules:
    return ScanRules(capture_dirs, extra, MIN_AGE, tags)


async def walk(rules: ScanRules, fs=None, *, skip=(), log=None) -> list[SyncFile]:
    fs = fs if fs is not None else OsFileSystem()
    with trio.fail_after(GUARD_S):
        return [
            f
            async for f in walk_ready(
                rules, fs, InlineRunner(), FakeWallClock(), skip=skip, log=log
            )
        ]


def rel(files: list[SyncFile], base: Path) -> list[str]:
    return [f.path.relative_to(base).as_posix() for f in files]


# ----------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("2026-08-21T15_04_05.123456Z.capture", FileKind.CAPTURE),
        ("2026-08-21T15_04_05.123456Z.prog", None),
        (".ferry.lock", None),
        ("x.capture.reason", None),
        ("download.tmp", None),
        (".notes.txt.swp", None),
        (".hidden", None),
        ("photo.jpeg", FileKind.ARBITRARY),
        ("README", FileKind.ARBITRARY),
        ("x.capture.bak", FileKind.ARBITRARY),
        ("tmp.txt", FileKind.ARBITRARY),
    ],
)
def test_file_kind_by_name(name: str, kind: FileKind | None):
    """Spec §4.3: .capture is a capture file, .prog/lock/.reason/.tmp/dotfiles are never
    synced, anything else is an arbitrary file."""
    assert file_kind(name) is kind


def test_capture_files_are_always_ready():
    """Spec §4.3: a .capture is ready even if empty or just written."""
    assert is_ready(FileKind.CAPTURE, 0, T0, T0, MIN_AGE)
    assert is_ready(FileKind.CAPTURE, 10, T0 + SECOND, T0, MIN_AGE)


def test_arbitrary_files_are_ready_when_non_empty_and_old_enough():
    """Spec §2.6: empty or recently modified arbitrary files wait; the age bound is inclusive."""
    assert is_ready(FileKind.ARBITRARY, 1, T0 - MIN_AGE, T0, MIN_AGE)
    assert not is_ready(FileKind.ARBITRARY, 1, T0 - MIN_AGE + 1, T0, MIN_AGE)
    assert not is_ready(FileKind.ARBITRARY, 0, T0 - 100 * MIN_AGE, T0, MIN_AGE)
    assert not is_ready(FileKind.ARBITRARY, 1, T0 + SECOND, T0, MIN_AGE)  # mtime in the future
    assert is_ready(FileKind.ARBITRARY, 1, T0, T0, 0)


def test_path_labels_example():
    """Spec §2.6: tag=/dataset= segments name tags and dataset ids, once each, in order."""
    segments = ["tag=lab", "dataset=d1", "x", "tag=", "tag=b", "dataset=d1", "Tag=no", "tag=lab"]
    assert path_labels(segments) == (("lab", "b"), ("d1",))


segment = st.one_of(
    st.builds(lambda v: f"tag={v}", st.sampled_from(["", "a", "b", "c=d"])),
    st.builds(lambda v: f"dataset={v}", st.sampled_from(["", "1", "2"])),
    st.sampled_from(["x", "tag", "dataset", "tags=a", "tag", "TAG=a"]),
)


@given(st.lists(segment, max_size=12))
def test_path_labels_match_a_model(segments: list[str]):
    """Tags are exactly the non-empty values after 'tag=', deduped in first-seen order;
    dataset ids likewise for 'dataset='; nothing else contributes."""
    want_tags: list[str] = []
    want_sets: list[str] = []
    for s in segments:
        key, sep, value = s.partition("=")
        target = {"tag": want_tags, "dataset": want_sets}.get(key) if sep else None
        if target is not None and value and value not in target:
            target.append(value)
    assert path_labels(segments) == (tuple(want_tags), tuple(want_sets))


@given(st.lists(st.lists(st.sampled_from("abcde"), max_size=5), max_size=4))
def test_merge_tags_is_an_ordered_union(groups: list[list[str]]):
    """Tags merge as sets (Viam) but keep a stable first-seen order (readable, deterministic)."""
    merged = merge_tags(*groups)
    assert len(set(merged)) == len(merged)
    assert set(merged) == {t for g in groups for t in g}
    flat = [t for g in groups for t in g]
    assert list(merged) == sorted(set(flat), key=flat.index)


def test_ready_file_tags_capture_and_arbitrary_files_differently():
    """Capture files get only the data manager's tags (the header carries the rest);
    arbitrary files add their path's tags and dataset ids."""
    root = Path("/c")
    rules = rules_for(root, tags=("dm", "lab"))
    entry = DirEntry("f.txt", False, 3, T0 - MIN_AGE)
    found = ready_file(rules, root, ["tag=lab", "dataset=d"], entry, root / "f.txt", T0)
    assert found is not None
    assert (found.tags, found.dataset_ids) == (("dm", "lab"), ("d",))
    cap = DirEntry("a.capture", False, 3, T0)
    found = ready_file(rules, root, ["tag=x"], cap, root / "a.capture", T0)
    assert found is not None
    assert (found.kind, found.tags, found.dataset_ids) == (FileKind.CAPTURE, ("dm", "lab"), ())


def test_scan_module_is_trio_free():
    """The walker's rules are usable without an event loop: scan.py imports no Trio."""
    source = Path(scan.__file__).read_text(encoding="utf-8")
    assert not imported_roots(source) & FORBIDDEN


# ----------------------------------------------------------------- the walk


async def test_walk_is_lexical_within_a_root_like_filepath_walk(tmp_path: Path):
    """Spec §4.3: names sorted within each directory, a subdirectory walked in its place."""
    for name in [
        "b.capture",
        "a/z.capture",
        "a/m/x.capture",
        "a.capture",
        "c.capture",
        "a/b.capture",
    ]:
        put(tmp_path / name)
    files = await walk(rules_for(tmp_path))
    assert rel(files, tmp_path) == [
        "a/b.capture",
        "a/m/x.capture",
        "a/z.capture",
        "a.capture",
        "b.capture",
        "c.capture",
    ]


async def test_roots_are_walked_capture_dirs_first_then_additional_paths(tmp_path: Path):
    """Spec §4.3: capture_dirs in order, then additional_sync_paths in order."""
    c1, c2, e1 = tmp_path / "z_cap", tmp_path / "a_cap", tmp_path / "extra"
    for d in (c1, c2):
        put(d / "1.capture")
    put(e1 / "f.bin")
    files = await walk(rules_for(c1, c2, extra=(e1,)))
    assert [(f.path, f.root) for f in files] == [
        (c1 / "1.capture", c1),
        (c2 / "1.capture", c2),
        (e1 / "f.bin", e1),
    ]


async def test_only_ready_files_are_yielded(tmp_path: Path):
    """Readiness on disk: .prog, lock, sidecars, temporaries, dotfiles, empty and young
    arbitrary files are left alone; captures and old non-empty files are yielded."""
    put(tmp_path / "done.capture", b"")
    put(tmp_path / "live.prog")
    put(tmp_path / ".ferry.lock", b"123\n")
    put(tmp_path / "x.capture.reason")
    put(tmp_path / "part.tmp")
    put(tmp_path / ".#draft")
    put(tmp_path / "empty.txt", b"")
    put(tmp_path / "young.txt", age_ns=MIN_AGE - 1)
    put(tmp_path / "old.txt", b"12345", age_ns=MIN_AGE)
    files = await walk(rules_for(tmp_path))
    assert [(f.path.name, f.kind, f.size) for f in files] == [
        ("done.capture", FileKind.CAPTURE, 0),
        ("old.txt", FileKind.ARBITRARY, 5),
    ]
    assert files[1].mtime_ns == T0 - MIN_AGE


async def test_failed_and_dataset_upload_dirs_are_never_entered(tmp_path: Path):
    """Spec §2.1: directories named failed or datasetUpload are skipped at any depth."""
    put(tmp_path / "failed/a.capture")
    put(tmp_path / "s/failed/b.capture")
    put(tmp_path / "s/t/datasetUpload/c.jpg")
    put(tmp_path / "datasetUpload/d.jpg")
    put(tmp_path / "s/failedx/e.capture")
    files = await walk(rules_for(tmp_path))
    assert rel(files, tmp_path) == ["s/failedx/e.capture"]


async def test_path_segments_below_the_root_tag_arbitrary_files(tmp_path: Path):
    """Spec §2.6: tag=/dataset= directories below the root label arbitrary files; capture
    files keep only the data manager's tags; the root's own name does not count."""
    root = tmp_path / "tag=root"
    put(root / "tag=lab/dataset=d1/tag=dm/tag=arm/f.png")
    put(root / "tag=lab/r.capture")
    files = await walk(rules_for(root, tags=("dm",)))
    assert [(f.path.name, f.tags, f.dataset_ids) for f in files] == [
        ("f.png", ("dm", "lab", "arm"), ("d1",)),
        ("r.capture", ("dm",), ()),
    ]
    assert files[0].relpath == "tag=lab/dataset=d1/tag=dm/tag=arm/f.png"


async def test_files_in_progress_are_skipped(tmp_path: Path):
    """Spec §4.3: a file another worker holds is not yielded again."""
    a, b = put(tmp_path / "a.capture"), put(tmp_path / "b.capture")
    files = await walk(rules_for(tmp_path), skip={a})
    assert [f.path for f in files] == [b]


async def test_overlapping_and_nested_roots_yield_each_file_once(tmp_path: Path):
    """Each file once, under the first root (in config order) whose walk reaches it: a
    nested later root is covered by the outer walk; an outer later root skips the
    earlier inner one; a repeated root is walked once."""
    cap = tmp_path / "cap"
    put(cap / "a.capture")
    put(cap / "sub/f.txt")
    put(tmp_path / "g.txt")
    rules = rules_for(cap, cap, extra=(cap / "sub", tmp_path, cap / "sub"))
    files = await walk(rules)
    assert [(f.path, f.root) for f in files] == [
        (cap / "a.capture", cap),
        (cap / "sub/f.txt", cap),
        (tmp_path / "g.txt", tmp_path),
    ]


async def test_a_root_inside_a_skipped_dir_of_another_root_is_still_walked(tmp_path: Path):
    """Coverage is by what a walk actually entered, not by path prefix alone."""
    inner = tmp_path / "datasetUpload" / "mine"
    put(inner / "f.txt")
    files = await walk(rules_for(tmp_path, extra=(inner,)))
    assert [(f.path, f.root) for f in files] == [(inner / "f.txt", inner)]


async def test_symlinked_directories_are_not_followed(tmp_path: Path):
    """A symlink to a directory (even a loop back to the root) is never entered."""
    root = tmp_path / "root"
    put(root / "real/a.capture")
    put(tmp_path / "elsewhere/b.capture")
    (root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    files = await walk(rules_for(root))
    assert rel(files, root) == ["real/a.capture"]


async def test_a_missing_root_is_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A capture dir that does not exist yet is not an error, nor a warning."""
    put(tmp_path / "extra/f.txt")
    with caplog.at_level(logging.DEBUG, logger="ferry.sync.scan"):
        files = await walk(rules_for(tmp_path / "nope", extra=(tmp_path / "extra",)))
    assert [f.path.name for f in files] == ["f.txt"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_unlistable_directory_is_skipped_with_a_rate_limited_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """A directory that cannot be listed costs only its own files, and the warning is
    logged once per interval even across walks sharing a log."""
    put(tmp_path / "a/1.capture")
    put(tmp_path / "b/2.capture")
    put(tmp_path / "c/3.capture")
    fs = ListingFS(fail={tmp_path / "b": PermissionError(13, "Permission denied")})
    log = RateLimitedLog(logging.getLogger("ferry.sync.scan"), scan.WARN_INTERVAL_S)
    with caplog.at_level(logging.WARNING, logger="ferry.sync.scan"):
        first = await walk(rules_for(tmp_path), fs, log=log)
        second = await walk(rules_for(tmp_path), fs, log=log)
    assert rel(first, tmp_path) == rel(second, tmp_path) == ["a/1.capture", "c/3.capture"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(tmp_path / "b") in warning.getMessage()


async def test_a_directory_vanishing_mid_walk_does_not_stop_the_walk(tmp_path: Path):
    """Retention or a user may delete directories while the walk is paused on a file."""
    put(tmp_path / "a/1.capture")
    put(tmp_path / "b/2.capture")
    put(tmp_path / "b/c/3.capture")
    put(tmp_path / "d/4.capture")
    put(tmp_path / "e.capture")
    found: list[str] = []
    with trio.fail_after(GUARD_S):
        walker = walk_ready(rules_for(tmp_path), OsFileSystem(), InlineRunner(), FakeWallClock())
        async for f in walker:
            found.append(f.path.relative_to(tmp_path).as_posix())
            if f.path.name == "1.capture":
                shutil.rmtree(tmp_path / "b")
                (tmp_path / "e.capture").unlink()  # listed already: still yielded, no error
    assert found == ["a/1.capture", "d/4.capture", "e.capture"]


async def test_the_walk_lists_lazily_one_directory_at_a_time(tmp_path: Path):
    """Memory is O(one directory): nothing below a directory is listed before the
    consumer pulls the files that come first, and every directory is listed once."""
    for d in "abc":
        for sub in "xy":
            put(tmp_path / d / sub / "f.capture")
    fs = ListingFS()
    with trio.fail_after(GUARD_S):
        walker = walk_ready(rules_for(tmp_path), fs, InlineRunner(), FakeWallClock())
        first = await anext(walker)
        assert first.path == tmp_path / "a/x/f.capture"
        assert fs.listed == [tmp_path, tmp_path / "a", tmp_path / "a/x"]
        rest = [f async for f in walker]
    assert len(rest) == 5
    assert len(fs.listed) == len(set(fs.listed)) == 10


async def walk_future(rules: ScanRules, future: FutureMtimes) -> list[str]:
    with trio.fail_after(GUARD_S):
        found = walk_ready(rules, OsFileSystem(), InlineRunner(), FakeWallClock(), future=future)
        return [f.path.name async for f in found]


async def test_a_file_from_before_the_clock_stepped_back_is_synced_once_left_alone(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
):
    """An mtime ahead of the wall clock means the clock stepped back since the last write:
    the file is ready once walks see it unchanged for the threshold on Trio's clock,
    not once the wall clock catches up (hours or days later)."""
    ahead = put(tmp_path / "before-the-step.txt", age_ns=-27 * 3600 * SECOND)
    rules = rules_for(tmp_path)
    future = FutureMtimes()
    assert await walk_future(rules, future) == []  # first seen now
    await trio.sleep(MIN_AGE / SECOND / 2)
    assert await walk_future(rules, future) == []
    os.utime(ahead, ns=(T0 + 3600 * SECOND, T0 + 3600 * SECOND))  # touched: the wait restarts
    assert await walk_future(rules, future) == []
    await trio.sleep(MIN_AGE / SECOND * 0.75)
    assert await walk_future(rules, future) == []
    await trio.sleep(MIN_AGE / SECOND * 0.25)
    assert await walk_future(rules, future) == ["before-the-step.txt"]
    assert await walk(rules) == []  # the wall clock alone never finds it ready


async def test_future_mtimes_forget_files_a_walk_no_longer_meets(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
):
    ahead = put(tmp_path / "ahead.txt", age_ns=-3600 * SECOND)
    put(tmp_path / "old.txt")
    future = FutureMtimes()
    assert await walk_future(rules_for(tmp_path), future) == ["old.txt"]
    assert len(future) == 1  # only the file ahead of the clock is remembered
    ahead.unlink()
    await walk_future(rules_for(tmp_path), future)
    assert len(future) == 0

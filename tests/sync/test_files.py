"""Guarantees of the blocking file helpers sync runs through the ``BlockingRunner``:
identities that notice change, exact chunks, a cheap capture check that names the
bad byte, idempotent deletes, and a park/retry round trip that loses nothing.

All on real temp directories through ``OsFileSystem`` (called directly: the
helpers are synchronous by design).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actors.adapters.os_fs import OsFileSystem
from actors.codec import RecordEncoder, encode_header, encode_varint
from actors.errors import PermanentError, TransientError
from actors.ports import FileKind, SyncFile
from actors.sync import files
from actors.sync.files import (
    CaptureCheck,
    compute_identity,
    delete_synced,
    inspect_capture,
    inspect_capture_bytes,
    park,
    read_chunk,
    retry_failed,
)
from protos.gen.viam.app.datasync import v1 as datasync
from tests.sync.test_pure_modules import FORBIDDEN, imported_roots

MIB = 1 << 20
T0 = 1_763_000_000_000_000_000
FS = OsFileSystem()


class CountingFS:
    """The real disk; readers record the size of every ``read`` call."""

    def __init__(self) -> None:
        self._os = OsFileSystem()
        self.read_sizes: list[int] = []

    def open_read(self, path: Path):
        return _CountingReader(self, self._os.open_read(path))

    def __getattr__(self, name: str):
        return getattr(self._os, name)


class _CountingReader:
    def __init__(self, fs: CountingFS, inner) -> None:
        self._fs, self._inner = fs, inner

    def read(self, size: int = -1) -> bytes:
        self._fs.read_sizes.append(size)
        return self._inner.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def close(self) -> None:
        self._inner.close()


class NoSyncFS:
    """The real disk without fsyncs, for tests that check contents, not durability."""

    def __init__(self) -> None:
        self._os = OsFileSystem()

    def fsync_dir(self, path: Path) -> None:
        pass

    def create_new(self, path: Path):
        return _NoSyncFile(self._os.create_new(path))

    def __getattr__(self, name: str):
        return getattr(self._os, name)


class _NoSyncFile:
    def __init__(self, inner) -> None:
        self._inner = inner

    def write(self, data) -> int:
        return self._inner.write(data)

    def fsync(self) -> None:
        pass

    def close(self) -> None:
        self._inner.close()


def sync_file(path: Path, root: Path, kind: FileKind = FileKind.ARBITRARY) -> SyncFile:
    st_ = path.stat()
    return SyncFile(path, root, kind, st_.st_size, st_.st_mtime_ns)


def header() -> bytes:
    return encode_header(
        datasync.DataCaptureMetadata(
            component_type="rdk:component:camera",
            component_name="cam",
            method_name="ReadImage",
            type=datasync.DataType.BINARY_SENSOR,
            file_extension=".jpeg",
        )
    )


def capture_bytes(payload_sizes: list[int]) -> tuple[bytes, list[int]]:
    """A capture file of binary records, and the end offset of its header and each record."""
    enc = RecordEncoder()
    out = bytearray(header())
    ends = [len(out)]
    for i, n in enumerate(payload_sizes):
        out += enc.binary_prefix(T0 + i, T0 + i, n) + bytes([i % 256]) * n
        ends.append(len(out))
    return bytes(out), ends


def test_helpers_module_is_trio_free():
    """The helpers are plain blocking functions: files.py imports no async runtime."""
    source = Path(files.__file__).read_text(encoding="utf-8")
    assert not imported_roots(source) & FORBIDDEN


# ----------------------------------------------------------------- identity


def test_identity_is_part_relpath_size_and_sha256_streamed_in_1_mib_reads(tmp_path: Path):
    """The upload key survives restarts (derived from the file alone) and hashing never
    holds more than 1 MiB of the file in memory."""
    data = random.Random(0).randbytes(3 * MIB + 12345)
    path = tmp_path / "tag=a" / "blob.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    fs = CountingFS()
    identity = compute_identity(fs, sync_file(path, tmp_path), "part-1")
    assert identity.part_id == "part-1"
    assert identity.path == "tag=a/blob.bin"
    assert identity.size == len(data)
    assert identity.sha256 == hashlib.sha256(data).digest()
    assert set(fs.read_sizes) == {MIB}
    assert len(fs.read_sizes) == 5  # 4 reads with data, one at EOF


@pytest.mark.parametrize("change", [b"grown", None], ids=["grown", "shrunk"])
def test_identity_refuses_a_file_that_changed_since_it_was_listed(tmp_path: Path, change):
    """A file rewritten after listing raises TransientError (retry), never a wrong identity."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")
    listed = sync_file(path, tmp_path)
    if change is None:
        path.write_bytes(b"01234")
    else:
        with path.open("ab") as f:
            f.write(change)
    with pytest.raises(TransientError, match="file changed while hashing"):
        compute_identity(FS, listed, "p")


# ----------------------------------------------------------------- chunks


@pytest.mark.parametrize(
    ("offset", "length"), [(0, 10), (3, 4), (9, 1), (10, 0), (0, 0), (2 * MIB - 5, 5)]
)
def test_read_chunk_returns_exactly_the_bytes_asked_for(tmp_path: Path, offset, length):
    """A chunk is the file's bytes [offset, offset + length), nothing more or less."""
    data = random.Random(1).randbytes(2 * MIB)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert read_chunk(FS, path, offset, length) == data[offset : offset + length]


@pytest.mark.parametrize(("offset", "length"), [(5, 6), (10, 1), (11, 1)])
def test_read_chunk_past_the_end_is_transient(tmp_path: Path, offset, length):
    """A file that got shorter than the upload's offset is a retryable error, not a short chunk."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with pytest.raises(TransientError, match="got shorter"):
        read_chunk(FS, path, offset, length)


# ----------------------------------------------------------------- capture check


def test_inspect_counts_records_without_reading_their_bodies(tmp_path: Path):
    """The check is cheap: a 3 MiB binary record is skipped by seeking, never read."""
    data, _ = capture_bytes([10, 3 * MIB, 0, 200])
    path = tmp_path / "x.capture"
    path.write_bytes(data)
    fs = CountingFS()
    assert inspect_capture(fs, path) == CaptureCheck(records=4)
    assert max(fs.read_sizes) == len(header()) - 1  # the header body; all else is 1-byte reads


def test_a_tabular_capture_file_is_counted_too(tmp_path: Path):
    """Tabular records have the same framing: every reading counts once."""
    enc = RecordEncoder()
    body = b"".join(enc.tabular(T0 + i, T0 + i, {"readings": {"i": i}}) for i in range(300))
    path = tmp_path / "t.capture"
    path.write_bytes(header() + body)
    assert inspect_capture(FS, path).records == 300


def test_a_header_without_records_counts_zero(tmp_path: Path):
    """Spec §4.4: an empty capture file is reported as such (the caller deletes it)."""
    path = tmp_path / "e.capture"
    path.write_bytes(header())
    assert inspect_capture(FS, path) == CaptureCheck(records=0)


def _bad_files() -> list[tuple[str, bytes, int, str]]:
    good, ends = capture_bytes([5, 5])
    h = ends[0]
    return [
        ("empty", b"", 0, "no header"),
        ("torn header length", b"\x80", 0, "header length"),
        ("header longer than the file", b"\x20abc", 0, "header declares 32"),
        ("unreadable header", b"\x03\xff\xff\xff", 0, "unreadable header"),
        ("torn record body", good[:-2], ends[1], "record declares"),
        ("torn record length", good + b"\x81", ends[2], "record length"),
        ("zero-length record", good + b"\x00\x00", ends[2], "zero-length"),
        ("absurd record length", good[:h] + encode_varint(1 << 31) + b"x", h, "exceeds"),
        ("over-long varint", good + b"\xff" * 11, ends[2], "longer than 10"),
    ]


@pytest.mark.parametrize(("case", "data", "offset", "why"), _bad_files(), ids=lambda v: str(v))
def test_unreadable_framing_is_permanent_and_names_file_and_offset(
    tmp_path: Path, case, data, offset, why
):
    """Spec §4.6: an unreadable header (or record framing) is terminal; the error says
    which file and at which byte the problem starts."""
    path = tmp_path / "bad.capture"
    path.write_bytes(data)
    with pytest.raises(PermanentError) as info:
        inspect_capture(FS, path)
    assert str(path) in str(info.value)
    assert f"offset {offset}:" in str(info.value)
    assert why in str(info.value)
    with pytest.raises(PermanentError) as in_memory:  # a batch's file, read whole first
        inspect_capture_bytes(path, data)
    assert str(in_memory.value) == str(info.value)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 300), max_size=6), data=st.data())
def test_every_truncation_is_a_clean_prefix_or_names_the_torn_frame(tmp_path: Path, sizes, data):
    """Cut anywhere: at a frame boundary the count is the records before the cut;
    elsewhere a PermanentError names the start of the frame the cut went through."""
    full, ends = capture_bytes(sizes)
    cut = data.draw(st.integers(0, len(full)))
    path = tmp_path / "cut.capture"
    path.write_bytes(full[:cut])
    if cut in ends:
        assert inspect_capture(FS, path).records == ends.index(cut)
        assert inspect_capture_bytes(path, full[:cut]) == inspect_capture(FS, path)
        return
    torn_start = max([0, *[e for e in ends if e < cut]])
    with pytest.raises(PermanentError, match=f"offset {torn_start}:"):
        inspect_capture(FS, path)
    with pytest.raises(PermanentError, match=f"offset {torn_start}:"):
        inspect_capture_bytes(path, full[:cut])


# ----------------------------------------------------------------- delete


def test_delete_is_idempotent(tmp_path: Path):
    """Deleting after a successful upload may be repeated (a crash between delete and
    bookkeeping): a missing file, or a missing directory, counts as deleted."""
    path = tmp_path / "d" / "f.capture"
    path.parent.mkdir()
    path.write_bytes(b"x")
    delete_synced(FS, path)
    assert not path.exists()
    delete_synced(FS, path)
    path.parent.rmdir()
    delete_synced(FS, path)


# ----------------------------------------------------------------- park and retry


def test_park_puts_capture_files_under_the_roots_failed_dir(tmp_path: Path):
    """Spec §4.6: <capture_dir>/failed/<same relative path>, with a .reason note."""
    path = tmp_path / "rdk_component_camera/cam/ReadImage/x.capture"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    target = park(FS, sync_file(path, tmp_path, FileKind.CAPTURE), "INVALID_ARGUMENT: nope")
    assert target == tmp_path / "failed/rdk_component_camera/cam/ReadImage/x.capture"
    assert target.read_bytes() == b"x"
    assert target.with_name("x.capture.reason").read_text() == "INVALID_ARGUMENT: nope\n"
    assert not path.exists()


def test_park_puts_arbitrary_files_under_their_own_failed_dir(tmp_path: Path):
    """Spec §4.6: <its own dir>/failed/<name>; an existing name gets a -N suffix."""
    path = tmp_path / "photos/tag=a/p.jpg"
    path.parent.mkdir(parents=True)
    (path.parent / "failed").mkdir()
    (path.parent / "failed/p.jpg").write_bytes(b"older")
    path.write_bytes(b"new")
    target = park(FS, sync_file(path, tmp_path), "bad")
    assert target == tmp_path / "photos/tag=a/failed/p-1.jpg"
    assert target.read_bytes() == b"new"
    assert (tmp_path / "photos/tag=a/failed/p.jpg").read_bytes() == b"older"


def test_retry_restores_files_removes_notes_and_never_overwrites(tmp_path: Path):
    """X/failed/REL goes back to X/REL; a name taken meanwhile gets -N; the note goes;
    an orphan note (crash after a restore) is removed too."""
    cap = tmp_path / "cap"
    a = cap / "s/a.capture"
    a.parent.mkdir(parents=True)
    a.write_bytes(b"A")
    park(FS, sync_file(a, cap, FileKind.CAPTURE), "r")
    a.write_bytes(b"newer A")  # a new file took the name meanwhile
    orphan = cap / "failed/s/gone.capture.reason"
    orphan.write_text("r\n")
    restored = retry_failed(FS, [cap])
    assert restored == [cap / "s/a-1.capture"]
    assert a.read_bytes() == b"newer A"
    assert (cap / "s/a-1.capture").read_bytes() == b"A"
    assert [p for p in (cap / "failed").rglob("*") if p.is_file()] == []


def test_retry_skips_missing_roots_and_ignores_symlinked_dirs(tmp_path: Path):
    """Roots that do not exist are nothing to restore; symlinks are never followed."""
    elsewhere = tmp_path / "elsewhere/failed"
    elsewhere.mkdir(parents=True)
    (elsewhere / "f.txt").write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert retry_failed(FS, [tmp_path / "missing", root]) == []
    assert (elsewhere / "f.txt").exists()


name = st.text(alphabet="abz019-_.=", min_size=1, max_size=6).filter(
    lambda s: s not in {".", ".."} and not s.endswith(".reason") and s != "failed"
)
relpath = st.lists(name, min_size=1, max_size=3).map(tuple)


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(
        st.tuples(relpath, st.sampled_from(list(FileKind)), st.binary(max_size=8)),
        min_size=1,
        max_size=6,
        unique_by=lambda e: e[0],
    )
)
def test_park_then_retry_is_a_round_trip(tmp_path_factory: pytest.TempPathFactory, entries):
    """Whatever is parked, capture or arbitrary at any depth, retry_failed puts back at
    its original path with its original bytes, leaving no file in any failed/ dir."""
    paths = [e[0] for e in entries]
    assume(not any(p != q and q[: len(p)] == p for p in paths for q in paths))  # no file is a dir
    root = tmp_path_factory.mktemp("root")
    originals: dict[Path, bytes] = {}
    for segments, _, data in entries:
        path = root.joinpath(*segments)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        originals[path] = data
    fs = NoSyncFS()
    for segments, kind, _ in entries:
        park(fs, sync_file(root.joinpath(*segments), root, kind), "because")
    assert not any(p.exists() for p in originals)
    restored = retry_failed(fs, [root])
    assert sorted(restored) == sorted(originals)
    assert {p: p.read_bytes() for p in originals} == originals
    leftovers = [p for p in root.rglob("*") if p.is_file() and "failed" in p.parts]
    assert leftovers == []


_SEGMENT = st.text(alphabet="ab.-_ é", min_size=1, max_size=4).filter(
    lambda s: s not in (".", "..") and "/" not in s
)


@given(
    root=st.lists(_SEGMENT, max_size=3),
    rest=st.lists(st.one_of(_SEGMENT, st.just("..")), min_size=1, max_size=3),
    absolute=st.booleans(),
)
def test_relpath_is_pathlibs_relative_posix_path(root: list[str], rest: list[str], absolute: bool):
    base = Path("/" if absolute else ".", *root)
    file = SyncFile(base.joinpath(*rest), base, FileKind.CAPTURE, 1, 0)
    assert file.relpath == file.path.relative_to(base).as_posix()


def test_relpath_of_a_path_outside_its_root_raises_as_pathlib_does():
    file = SyncFile(Path("/data/x.capture"), Path("/capture"), FileKind.CAPTURE, 1, 0)
    with pytest.raises(ValueError, match=r"/data/x\.capture"):
        _ = file.relpath

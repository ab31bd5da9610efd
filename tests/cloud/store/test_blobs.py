"""``BlobDir``: content addressing, idempotent durable writes, adopt, remove, sweep;
and the store's own directories, durable from their creation."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from typing import TYPE_CHECKING

import pytest

from actors.adapters.os_fs import OsFileSystem
from cloud.errors import InvalidArgument, NotFound
from cloud.model import BlobRef
from cloud.store.sqlite import SqliteStore
from cloud.store.sqlite._blobs import CHUNK_SIZE, BlobDir

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def blobs(tmp_path: Path) -> BlobDir:
    return BlobDir(tmp_path / "blobs")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_is_content_addressed_with_fan_out(blobs: BlobDir) -> None:
    data = b"hello blob"
    sha = hashlib.sha256(data).hexdigest()
    ref = blobs.put(data)
    assert ref == BlobRef(sha256=sha, size=len(data))
    assert blobs.path_for(sha) == blobs.root / sha[:2] / sha[2:]
    assert blobs.path_for(sha).read_bytes() == data
    assert _files(blobs.root) == [f"{sha[:2]}/{sha[2:]}"]


def test_put_twice_is_idempotent_and_leaves_no_temp_files(blobs: BlobDir) -> None:
    first = blobs.put(b"same")
    mtime = blobs.path_for(first.sha256).stat().st_mtime_ns
    second = blobs.put(memoryview(b"same"))
    assert first == second
    assert blobs.path_for(first.sha256).stat().st_mtime_ns == mtime  # not rewritten
    assert len(_files(blobs.root)) == 1


def test_concurrent_puts_of_the_same_bytes_store_one_file(blobs: BlobDir) -> None:
    data = b"x" * 10_000
    refs: list[BlobRef] = []
    threads = [threading.Thread(target=lambda: refs.append(blobs.put(data))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(refs)) == 1
    assert len(_files(blobs.root)) == 1
    assert b"".join(blobs.open(refs[0])) == data


def test_put_many_stores_each_once_in_order_and_skips_what_is_stored(blobs: BlobDir) -> None:
    """An ``UploadFiles`` call's blobs: all durable together, duplicates written once."""
    old = blobs.put(b"already here")
    mtime = blobs.path_for(old.sha256).stat().st_mtime_ns
    datas = [b"frame 1", b"already here", memoryview(b"frame 2"), b"frame 1", b""]
    refs = blobs.put_many(datas)
    assert refs == [
        BlobRef(sha256=hashlib.sha256(bytes(d)).hexdigest(), size=len(d)) for d in datas
    ]
    assert [b"".join(blobs.open(ref)) for ref in refs] == [bytes(d) for d in datas]
    assert blobs.path_for(old.sha256).stat().st_mtime_ns == mtime  # not rewritten
    assert len(_files(blobs.root)) == 4  # no temp file left, each content once
    assert blobs.put_many([]) == []


def test_put_many_that_fails_midway_leaves_no_temp_file_and_no_partial_blob(
    blobs: BlobDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write error (ENOSPC, say) fails the call: nothing half-written stays behind."""
    real_write = os.write
    calls = []

    def write(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError, match="No space"):
        blobs.put_many([b"first", b"second", b"third"])
    monkeypatch.undo()
    assert _files(blobs.root) == []


def test_empty_blob(blobs: BlobDir) -> None:
    ref = blobs.put(b"")
    assert ref.size == 0
    assert ref.sha256 == hashlib.sha256(b"").hexdigest()
    assert list(blobs.open(ref)) == []


def test_open_yields_chunks_of_at_most_one_mib(blobs: BlobDir) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE * 5 // 2 // 256)
    chunks = list(blobs.open(blobs.put(data)))
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, len(data) - 2 * CHUNK_SIZE]
    assert b"".join(chunks) == data


def test_open_missing_blob_is_not_found_at_call_time(blobs: BlobDir) -> None:
    ref = BlobRef(sha256=hashlib.sha256(b"never stored").hexdigest(), size=12)
    with pytest.raises(NotFound, match=ref.sha256):
        blobs.open(ref)


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "AB" * 32, "a" * 63, "g" * 64])
def test_malformed_hash_never_names_a_path(blobs: BlobDir, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        blobs.path_for(bad)


def test_adopt_moves_the_file_into_place(blobs: BlobDir, tmp_path: Path) -> None:
    source = tmp_path / "staged"
    source.write_bytes(b"adopted bytes")
    sha = hashlib.sha256(b"adopted bytes").hexdigest()
    ref = blobs.adopt(source, sha, 13)
    assert ref == BlobRef(sha, 13)
    assert not source.exists()
    assert b"".join(blobs.open(ref)) == b"adopted bytes"


def test_adopt_of_an_existing_blob_drops_the_source(blobs: BlobDir, tmp_path: Path) -> None:
    ref = blobs.put(b"dup")
    source = tmp_path / "staged"
    source.write_bytes(b"dup")
    assert blobs.adopt(source, ref.sha256, 3) == ref
    assert not source.exists()
    assert len(_files(blobs.root)) == 1


def test_adopt_with_the_wrong_size_keeps_the_source(blobs: BlobDir, tmp_path: Path) -> None:
    source = tmp_path / "staged"
    source.write_bytes(b"four")
    sha = hashlib.sha256(b"four").hexdigest()
    with pytest.raises(InvalidArgument, match="4 bytes, expected 5"):
        blobs.adopt(source, sha, 5)
    assert source.read_bytes() == b"four"
    assert _files(blobs.root) == []


def test_remove_and_remove_missing(blobs: BlobDir) -> None:
    ref = blobs.put(b"gone soon")
    blobs.remove(ref.sha256)
    assert not blobs.exists(ref)
    blobs.remove(ref.sha256)  # missing is fine
    with pytest.raises(NotFound):
        blobs.open(ref)


def test_sweep_removes_temp_files_and_only_unreferenced_blobs(blobs: BlobDir) -> None:
    keep = blobs.put(b"keep")
    orphan = blobs.put(b"orphan")
    tmp = blobs.path_for(keep.sha256).parent / ".tmp-crashed"
    tmp.write_bytes(b"half a blob")

    assert blobs.sweep() == 1  # temp files only
    assert not tmp.exists()
    assert blobs.exists(orphan)

    assert blobs.sweep(lambda sha: sha == keep.sha256) == 1
    assert blobs.exists(keep)
    assert not blobs.exists(orphan)


def test_open_reads_only_the_range_a_ref_names(blobs: BlobDir) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 128)  # 2 MiB: the range spans chunks
    whole = blobs.put(data)
    ref = BlobRef(whole.sha256, size=CHUNK_SIZE + 5, offset=300)
    assert b"".join(blobs.open(ref)) == data[300 : 300 + CHUNK_SIZE + 5]
    assert blobs.exists(ref)
    assert not blobs.exists(BlobRef(whole.sha256, size=len(data), offset=1))


@pytest.mark.parametrize("can_punch", [True, False])
def test_punch_zeroes_a_range_and_keeps_the_rest(
    blobs: BlobDir, monkeypatch: pytest.MonkeyPatch, can_punch: bool
) -> None:
    if not can_punch:  # a file system without PUNCH_HOLE: the range is overwritten
        monkeypatch.setattr("cloud.store.sqlite._blobs.punch_hole", lambda fd, off, n: False)
    data = b"a" * 10_000 + b"secret" * 2_000 + b"z" * 10_000
    whole = blobs.put(data)
    blobs.punch(BlobRef(whole.sha256, size=12_000, offset=10_000))
    stored = blobs.path_for(whole.sha256).read_bytes()
    assert stored == b"a" * 10_000 + bytes(12_000) + b"z" * 10_000
    blobs.punch(BlobRef("0" * 64, size=1, offset=0))  # a missing blob is fine


def test_a_new_store_makes_its_directories_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledged chunks and blobs live below the data dir: every directory the store
    creates is fsynced into its parent, so a power cut cannot take one with them."""
    synced: list[Path] = []
    real = OsFileSystem.fsync_dir

    def fsync_dir(self: OsFileSystem, path: Path) -> None:
        synced.append(path)
        real(self, path)

    monkeypatch.setattr(OsFileSystem, "fsync_dir", fsync_dir)
    data_dir = tmp_path / "srv" / "cloud"
    SqliteStore(data_dir).close()
    assert {tmp_path, tmp_path / "srv", data_dir} <= set(synced)
    assert (data_dir / "blobs").is_dir()
    assert (data_dir / "staging").is_dir()
    synced.clear()
    SqliteStore(data_dir).close()  # reopened: nothing new, no directory fsynced for it
    assert synced == []

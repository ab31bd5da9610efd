"""A finish verifies the hash of what was committed, from the running hash or from the file.

``RunningHashes`` must give exactly the SHA-256 of the committed bytes, or
nothing (then the finish reads the staging file): never a digest of other bytes.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.errors import InvalidArgument
from cloud.ingest import resumable
from cloud.ingest.ids import IdSource
from cloud.ingest.resumable import ResumableIngest, ResumableLimits
from cloud.model import Filter, PageRequest, UploadKind
from cloud.store.sqlite import SqliteStore
from cloud.store.sqlite._running_hash import RunningHashes
from tests.cli.captures import write_tabular
from tests.cloud.ingest.conftest import ROBOT, WALL0, World

if TYPE_CHECKING:
    from pathlib import Path


@given(st.lists(st.binary(min_size=1, max_size=64), max_size=8))
def test_chunks_committed_in_order_hash_to_the_whole(chunks: list[bytes]) -> None:
    hashes, offset = RunningHashes(), 0
    for chunk in chunks:
        hashes.committed("up", offset, chunk)
        offset += len(chunk)
    whole = b"".join(chunks)
    expected = hashlib.sha256(whole).digest() if chunks else None
    assert hashes.digest("up", len(whole)) == expected
    assert hashes.digest("up", len(whole) + 1) is None  # not all of it: no digest


def test_a_chunk_that_does_not_continue_the_hash_ends_it() -> None:
    hashes = RunningHashes()
    hashes.committed("up", 0, b"abc")
    hashes.committed("up", 5, b"xyz")  # bytes 3..5 were never seen here
    assert hashes.digest("up", 8) is None
    assert hashes.digest("up", 3) is None
    hashes.committed("up", 0, b"abcdef")  # a fresh start at offset 0 counts again
    assert hashes.digest("up", 6) == hashlib.sha256(b"abcdef").digest()


def test_a_chunk_at_a_later_offset_without_a_start_is_not_hashed() -> None:
    hashes = RunningHashes()  # a restart: the first chunk this process sees is at 1 MiB
    hashes.committed("up", 1 << 20, b"tail")
    assert hashes.digest("up", (1 << 20) + 4) is None


def test_the_oldest_uploads_are_forgotten_beyond_the_limit_and_finished_ones_at_once() -> None:
    hashes = RunningHashes(limit=2)
    for name in ("a", "b", "c"):
        hashes.committed(name, 0, b"x")
    assert hashes.digest("a", 1) is None
    assert hashes.digest("c", 1) == hashlib.sha256(b"x").digest()
    hashes.forget("c")
    assert hashes.digest("c", 1) is None


def _tabular(tmp_path: Path) -> bytes:
    d = tmp_path / "cap"
    d.mkdir()
    rows = [{"readings": {"i": i, "x": i / 2}} for i in range(400)]
    return write_tabular(d, rows).read_bytes()


def _write_half(world: World, data: bytes) -> tuple[str, int]:
    ident = world.identity(data)
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    half = len(data) // 2
    world.ingest.write(ROBOT, up.upload_id, 0, data[:half], zlib.crc32(data[:half]))
    return up.upload_id, half


def _readings(store: SqliteStore) -> int:
    return len(store.tabular_by_filter(ROBOT, Filter(), PageRequest(limit=10_000)).rows)


def test_a_finish_uses_the_running_hash_and_does_not_read_the_file_again(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reread(path: Path) -> bytes:
        raise AssertionError(f"read {path} again to hash it")

    monkeypatch.setattr(resumable, "file_sha256", no_reread)
    data = _tabular(tmp_path)
    world.upload(data, chunk=1000)
    assert _readings(world.store) == 400


@pytest.mark.parametrize("changed", [False, True], ids=["same-file", "file-changed"])
def test_after_a_restart_mid_upload_the_finish_hashes_the_file(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed: bool
) -> None:
    data = _tabular(tmp_path)
    upload_id, half = _write_half(world, data)
    world.store.close()
    store = SqliteStore(tmp_path / "cloud", wall_ns=lambda: WALL0)  # the server restarted
    spool = tmp_path / "spool"
    ingest = ResumableIngest(store, IdSource(random.Random(8)), spool, ResumableLimits())
    reread: list[Path] = []
    real = resumable.file_sha256
    monkeypatch.setattr(resumable, "file_sha256", lambda p: reread.append(p) or real(p))
    rest = bytearray(data[half:])
    if changed:
        rest[-1] ^= 0xFF  # the robot's file changed while it was uploaded
    ingest.write(ROBOT, upload_id, half, bytes(rest), zlib.crc32(rest))
    try:
        if changed:
            with pytest.raises(InvalidArgument, match="the file changed while it was uploaded"):
                ingest.finish(ROBOT, upload_id, hashlib.sha256(data).digest())
            assert _readings(store) == 0
        else:
            ingest.finish(ROBOT, upload_id, hashlib.sha256(data).digest())
            assert _readings(store) == 400
        assert len(reread) == 1
    finally:
        store.close()
        world.store = SqliteStore(tmp_path / "cloud", wall_ns=lambda: WALL0)  # for teardown

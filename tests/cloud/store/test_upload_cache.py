"""Staged uploads leave the page cache behind them: only durable bytes, never the tail."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from cloud.model import UploadKind
from cloud.store.sqlite import _uploads
from tests.cloud.store.conftest import ORG, PART, make_identity, make_principal

if TYPE_CHECKING:
    from cloud.store.sqlite import SqliteStore

MIB = 1 << 20
pytestmark = pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Each fsync and each page-cache drop of a staging file, in order."""
    seen: list[tuple[str, int, int]] = []
    real_fsync, real_fadvise = os.fsync, os.posix_fadvise

    def fsync(fd: int) -> None:
        seen.append(("fsync", 0, 0))
        real_fsync(fd)

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        seen.append(("drop", offset, offset + length))
        real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(_uploads.os, "fsync", fsync)
    monkeypatch.setattr(_uploads.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(_uploads, "CACHED_TAIL_BYTES", 2 * MIB)
    return seen


def _upload(store: SqliteStore, data: bytes, chunk: int) -> None:
    up = store.open_upload(
        store.resolve_part(make_principal(), PART),
        make_identity(data),
        UploadKind.CAPTURE_FILE,
        b"meta",
        new_upload_id="up-1",
    )
    for offset in range(0, len(data), chunk):
        store.write_chunk(ORG, up.upload_id, offset, data[offset : offset + chunk])


def test_each_chunk_drops_what_fell_behind_the_cached_tail_after_its_fsync(
    store: SqliteStore, calls: list[tuple[str, int, int]]
) -> None:
    data = os.urandom(5 * MIB)
    _upload(store, data, MIB)
    # Chunks end at 1..5 MiB; with a 2 MiB tail, the first three MiB fall behind,
    # each right after the fsync of the chunk that moved the tail past it (the
    # first chunk also fsyncs the staging directory).
    assert calls == [
        ("fsync", 0, 0),
        ("fsync", 0, 0),
        ("fsync", 0, 0),
        ("fsync", 0, 0),
        ("drop", 0, MIB),
        ("fsync", 0, 0),
        ("drop", MIB, 2 * MIB),
        ("fsync", 0, 0),
        ("drop", 2 * MIB, 3 * MIB),
    ]
    assert store.staged_path(ORG, "up-1").read_bytes() == data


def test_an_upload_smaller_than_the_tail_stays_cached(
    store: SqliteStore, calls: list[tuple[str, int, int]]
) -> None:
    _upload(store, os.urandom(2 * MIB), MIB // 2)
    assert [c for c in calls if c[0] == "drop"] == []

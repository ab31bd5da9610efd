"""A resumable-ingest world without a transport: a real store, ids and a spool dir."""

from __future__ import annotations

import hashlib
import random
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from cloud.ingest.ids import IdSource
from cloud.ingest.resumable import ResumableIngest, ResumableLimits
from cloud.model import Principal, UploadIdentity, UploadKind
from cloud.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cloud.model import UploadRecord

WALL0 = 1_700_000_000_000_000_000
ROBOT = Principal("key-a", "org-a", "loc-a")


@dataclass
class World:
    store: SqliteStore
    ingest: ResumableIngest

    def identity(self, data: bytes, path: str = "sensor/env/Readings/f.capture") -> UploadIdentity:
        return UploadIdentity("part-1", path, len(data), hashlib.sha256(data).digest())

    def upload(
        self,
        data: bytes,
        *,
        who: Principal = ROBOT,
        kind: UploadKind = UploadKind.CAPTURE_FILE,
        chunk: int = 1 << 20,
        metadata: bytes = b"",
        path: str = "sensor/env/Readings/f.capture",
    ) -> UploadRecord:
        """The happy path a sync client runs: open, write every chunk, finish."""
        ident = self.identity(data, path)
        up = self.ingest.open(who, ident, kind, metadata)
        offset = up.committed_offset
        while offset < len(data):
            piece = data[offset : offset + chunk]
            offset, _ = self.ingest.write(who, up.upload_id, offset, piece, zlib.crc32(piece))
        return self.ingest.finish(who, up.upload_id, ident.sha256)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = SqliteStore(tmp_path / "cloud", wall_ns=lambda: WALL0)
    spool = tmp_path / "spool"
    spool.mkdir()
    ingest = ResumableIngest(
        store, IdSource(random.Random(7)), spool, ResumableLimits(max_chunk_bytes=64 << 10)
    )
    yield World(store, ingest)
    store.close()

"""Abandoned uploads: the running server expires open uploads idle past its limit."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from cloud.aio_loop import run_asyncio
from cloud.errors import NotFound
from cloud.model import UploadKind
from cloud.store.sqlite import SqliteStore
from tests.cloud.rpc.conftest import start_server
from tests.cloud.store.conftest import make_identity, make_principal

if TYPE_CHECKING:
    from pathlib import Path

DAY_NS = 86_400 * 10**9
T0 = 1_767_225_600 * 10**9


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now_ns = T0

    def __call__(self) -> int:
        return self.now_ns


def _abandoned_upload(data_dir: Path, clock: Clock) -> str:
    """An upload opened and given one chunk at T0, then never touched again."""
    store = SqliteStore(data_dir, wall_ns=clock)
    try:
        part = store.resolve_part(make_principal(), "part-1")
        up = store.open_upload(
            part, make_identity(b"x" * 100), UploadKind.CAPTURE_FILE, b"", new_upload_id="old"
        )
        store.write_chunk(part.org_id, up.upload_id, 0, b"x" * 10)
        return up.upload_id
    finally:
        store.close()


@pytest.mark.parametrize(("after_days", "expired"), [(30.0, True), (0.0, False)])
def test_the_server_expires_an_upload_idle_past_its_limit_unless_disabled(
    tmp_path: Path, after_days: float, expired: bool
) -> None:
    """31 days idle: gone with its staging file at start (30-day limit), kept with 0 (never)."""
    clock = Clock()
    upload_id = _abandoned_upload(tmp_path / "cloud", clock)
    clock.now_ns += 31 * DAY_NS
    staged = tmp_path / "cloud" / "staging" / upload_id

    async def scenario() -> None:
        async with start_server(
            tmp_path, wall_ns=clock, expire_uploads_after_s=after_days * 86_400
        ) as srv:
            for _ in range(50):  # the first pass runs as the server starts
                if not staged.exists():
                    break
                await asyncio.sleep(0.01)
            store = srv.server.store
            if expired:
                with pytest.raises(NotFound):
                    store.get_upload(make_principal().org_id, upload_id)
                assert not staged.exists()
            else:
                assert store.get_upload(make_principal().org_id, upload_id).committed_offset == 10
                assert staged.stat().st_size == 10

    run_asyncio(scenario())

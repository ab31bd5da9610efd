"""Abandoned uploads: the running server expires open uploads idle past its limit."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import TYPE_CHECKING

import pytest

from cloud.aio_loop import run_asyncio
from cloud.errors import NotFound
from cloud.ingest.expiry import UploadExpiry
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


def test_stop_ends_the_expiry_loop_at_once_and_a_failed_pass_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A storage error does not end the loop; stop does, without waiting out the hour."""
    store = SqliteStore(tmp_path / "cloud")
    store.close()
    shutil.rmtree(tmp_path / "cloud")  # every pass now fails: no database to open
    expiry = UploadExpiry(store, idle_s=60.0, every_s=0.01)

    async def scenario() -> float:
        task = asyncio.create_task(expiry.run())
        await asyncio.sleep(0.1)
        slow = UploadExpiry(store, idle_s=60.0, every_s=3_600.0)
        slow_task = asyncio.create_task(slow.run())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        expiry.stop()
        slow.stop()
        await asyncio.wait_for(asyncio.gather(task, slow_task), 5)
        return time.monotonic() - started

    with caplog.at_level(logging.ERROR, logger="ferry.cloud"):
        took = run_asyncio(scenario())
    failures = [r for r in caplog.records if "expiring idle uploads failed" in r.message]
    assert len(failures) >= 3  # retried, pass after pass
    assert took < 1.0

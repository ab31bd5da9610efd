"""``SqliteStore``: the embedded ``Store`` (SQLite metadata and readings, blob files).

Layout of a data directory (mode 0700)::

    ferry.db        SQLite in WAL mode: keys, parts, uploads, contexts, readings,
                    fragments and part configs (``_fleet``)
    blobs/ab/cdef…  content-addressed binary data (see ``_blobs``)
    staging/<id>    the committed bytes of each open resumable upload

The write side lives in ``_ingest.IngestMixin``, the read side in
``_query.QueryMixin``; both work on ``_db``, ``_blobs`` and ``_wall_ns``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, final

from actors.adapters.os_fs import OsFileSystem
from actors.durable_dirs import ensure_dir
from cloud.store.sqlite._blobs import BlobDir
from cloud.store.sqlite._db import Database
from cloud.store.sqlite._fleet import FleetMixin
from cloud.store.sqlite._ingest import IngestMixin
from cloud.store.sqlite._query import QueryMixin
from cloud.store.sqlite._small import SmallUploadsMixin
from cloud.store.sqlite._uploads import UploadsMixin

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cloud.fleet.port import FleetStore
    from cloud.store.port import Store

__all__ = ["SqliteStore"]


@final
class SqliteStore(IngestMixin, UploadsMixin, SmallUploadsMixin, QueryMixin, FleetMixin):
    """The embedded store: one data directory, safe to call from many threads.

    Opening it sweeps what a crash can leave behind: blob temp files, blobs
    nothing references (put or adopted, but their rows never committed, or
    left by a delete), byte ranges a delete had not yet freed, and staging
    files of finished or unknown uploads.
    Times it records (``time_synced``, ``created_ns``) come from the injected
    wall clock.

    Example::

        store = SqliteStore(Path("/var/lib/ferry-cloud"))
        try:
            part = store.resolve_part(principal, "part-1")
        finally:
            store.close()
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        sweep: bool = True,
        sql_budget_steps: int | None = None,
    ) -> None:
        """Opens (creating if needed) the store in ``data_dir``.

        Args:
            data_dir: the store's directory, created with mode 0700 if missing.
            wall_ns: the wall clock, nanoseconds since the Unix epoch.
            sweep: remove what a crash left behind (the server does); tools that
                may run beside a live server (``ferry cloud keys``/``config``) pass
                ``False``.
            sql_budget_steps: SQLite VM steps one ``sql_query`` may take (default
                about half a second of work); a trusted caller may allow more.
        """
        ensure_dir(OsFileSystem(), data_dir)  # durable: acknowledged data lives below it
        self.data_dir = data_dir
        self._wall_ns = wall_ns
        if sql_budget_steps is not None:
            self._sql_budget_steps = sql_budget_steps
        self._db = Database(data_dir / "ferry.db")
        self._closed = False
        try:
            self._blobs = BlobDir(data_dir / "blobs")
            self._open_ingest(data_dir / "staging", sweep=sweep)
            if sweep:
                self.free_pending()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Closes the database; idempotent. Call when no thread uses the store."""
        if self._closed:
            return
        self._closed = True
        self._db.close()


if TYPE_CHECKING:

    def _conforms(store: SqliteStore) -> Store:
        # mypy checks here that the two mixins together implement the port.
        return store

    def _conforms_fleet(store: SqliteStore) -> FleetStore:
        return store

"""SQLite connections for the embedded store: one serialized writer, per-thread readers.

The gRPC server calls the store from worker threads. SQLite in WAL mode lets
readers run beside the single writer; writes are serialized by a lock and run
in ``BEGIN IMMEDIATE`` transactions so a commit either happens whole or not at
all. ``synchronous=FULL`` makes every commit durable before it returns.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, final

from cloud.store.sqlite._schema import PRAGMAS, apply_schema

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    for pragma in PRAGMAS:
        if read_only and "journal_mode" in pragma:
            continue
        conn.execute(pragma)
    return conn


@final
class Database:
    """The store's connections.

    Example::

        db = Database(data_dir / "ferry.db")
        with db.write() as conn:
            conn.execute("INSERT ...")
        with db.read() as conn:
            rows = conn.execute("SELECT ...").fetchall()
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = _connect(path, read_only=False)
        apply_schema(self._writer)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed (durably) on exit, rolled back on error."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's read-only connection, in one consistent read transaction."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, read_only=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def open_sandbox(self) -> sqlite3.Connection:
        """A fresh read-only connection the caller owns (for untrusted SQL)."""
        return _connect(self.path, read_only=True)

    def close(self) -> None:
        """Closes every connection (call once, when no thread uses the store)."""
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()

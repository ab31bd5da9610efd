"""The query half of the embedded store: filtered reads, counts, exports and deletes.

``QueryMixin`` implements the ``Store`` port's query methods over the schema
in ``_schema.py``; ``SqliteStore`` mixes it in beside the ingest half. Every
method is scoped by the caller's ``Principal`` through ``_filters.where``.

Reads run in short read transactions: streaming methods (``export_tabular``,
``iter_reading_documents``) fetch one keyset page per transaction and yield
its rows only after the transaction ends, so memory stays bounded and a slow
consumer never pins a WAL snapshot. A stream is therefore consistent page by
page, not as a whole: rows committed meanwhile may appear if they sort after
the cursor. Deletes commit first and remove unreferenced blobs after the
commit, re-checking references under the write lock, so a crash can leave an
orphan blob (swept at open) but never a row whose blob is gone.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, cast

from cloud.model import (
    AnyValue,
    BinaryRow,
    BlobRef,
    Filter,
    Page,
    PageRequest,
    SortOrder,
    StoredMetadata,
    TabularRow,
    UploadStatus,
)
from cloud.store.sqlite import _sandbox
from cloud.store.sqlite._filters import (
    Kind,
    Where,
    after,
    decode_data,
    decode_json,
    encode_cursor,
    order_by,
    page_limit,
    where,
)

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator, Sequence

    from cloud.model import Document, Principal
    from cloud.store.sqlite._blobs import BlobDir
    from cloud.store.sqlite._db import Database

    Row = tuple[object, ...]

_RowT = TypeVar("_RowT")

STREAM_BATCH = 1000  # rows per read transaction when streaming
_ID_CHUNK = 500  # ids per IN (...) list, well under SQLite's parameter limit
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The capture metadata every row reports: columns 0..11 of every SELECT here; the
# row's key and time_requested follow as columns 12 and 13 (the paging cursor).
_META = (
    "c.org_id, c.location_id, COALESCE(p.robot_name, ''), COALESCE(p.robot_id, ''), "
    "COALESCE(p.part_name, ''), c.part_id, c.component_type, c.component_name, "
    "c.method_name, c.method_parameters, c.tags, {mime}"
)
_TABULAR_COLUMNS = (
    _META.format(mime=Kind.TABULAR.mime)
    + ", t.id, t.time_requested, t.time_received, t.time_synced, t.data"
)
_BINARY_COLUMNS = (
    _META.format(mime=Kind.BINARY.mime)
    + ", b.binary_data_id, b.time_requested, b.time_received, b.time_synced, b.sha256,"
    " b.size, b.file_name, b.file_ext, b.dataset_ids, b.annotations, b.file_id, b.blob_offset"
)


class QueryMixin:
    """The ``Store`` port's query methods (see ``cloud/store/port.py`` for contracts).

    Needs ``self._db`` and ``self._blobs``, which ``SqliteStore`` sets.
    ``_sql_budget_steps`` bounds the work of one ``sql_query`` (SQLite VM steps).

    Example::

        flt = Filter(component_name="imu")
        page = store.tabular_by_filter(who, flt, PageRequest(limit=100))
        while page.last:
            page = store.tabular_by_filter(who, flt, PageRequest(limit=100, last=page.last))
    """

    _db: Database
    _blobs: BlobDir
    _sql_budget_steps: int = _sandbox.DEFAULT_BUDGET_STEPS

    # -- tabular -------------------------------------------------------------------

    def tabular_by_filter(self, who: Principal, flt: Filter, page: PageRequest) -> Page[TabularRow]:
        """Readings matching ``flt``, keyset-paged by (time_requested, id)."""
        return self._page(who, flt, page, Kind.TABULAR, _TABULAR_COLUMNS, _tabular_row)

    def count_tabular(self, who: Principal, flt: Filter) -> int:
        """How many readings match ``flt``."""
        return self._count(where(who, flt, Kind.TABULAR), Kind.TABULAR)

    def latest_tabular(
        self,
        who: Principal,
        part_id: str,
        resource_name: str,
        resource_subtype: str,
        method_name: str,
    ) -> TabularRow | None:
        """The reading of one (part, resource, method) with the latest time_requested.

        Viam calls that time ``time_captured``; ties go to the latest stored.
        """
        flt = _resource_filter(part_id, resource_name, resource_subtype, method_name)
        rows = self.tabular_by_filter(who, flt, PageRequest(limit=1)).rows
        return rows[0] if rows else None

    def export_tabular(
        self,
        who: Principal,
        part_id: str,
        resource_name: str,
        resource_subtype: str,
        method_name: str,
        start_ns: int,
        end_ns: int,
    ) -> Iterator[TabularRow]:
        """Every matching reading, oldest first, fetched ``STREAM_BATCH`` rows at a time.

        ``start_ns``/``end_ns`` bound time_requested inclusively (``0`` = open).
        """
        flt = _resource_filter(part_id, resource_name, resource_subtype, method_name)
        flt = dataclasses.replace(flt, start_ns=start_ns, end_ns=end_ns)
        return self._stream(who, flt)

    def iter_reading_documents(self, who: Principal, flt: Filter) -> Iterator[Document]:
        """The readings matching ``flt`` as Viam-shaped documents, oldest first, streamed.

        Raises:
            PermissionDenied: ``flt`` names another organization (raised here,
                not on the first ``next``).
        """
        return (_document(row) for row in self._stream(who, flt))

    def delete_tabular(self, who: Principal, older_than_ns: int, flt: Filter) -> int:
        """Deletes matching readings with time_requested before ``older_than_ns`` (0 = all).

        Capture contexts are kept even when no row references them any more:
        they are small, and the ingest side may reuse them.
        """
        w = where(who, flt, Kind.TABULAR)
        if older_than_ns:
            w = Where(f"{w.sql} AND t.time_requested < ?", (*w.params, older_than_ns))
        select = f"SELECT t.id FROM {Kind.TABULAR.source} WHERE {w.sql}"
        with self._db.write() as conn:
            return conn.execute(f"DELETE FROM tabular WHERE id IN ({select})", w.params).rowcount

    # -- binary --------------------------------------------------------------------

    def binary_by_filter(self, who: Principal, flt: Filter, page: PageRequest) -> Page[BinaryRow]:
        """Binary items matching ``flt``, keyset-paged; ``total_size_bytes`` sums the page."""
        got = self._page(who, flt, page, Kind.BINARY, _BINARY_COLUMNS, _binary_row)
        total = sum(row.blob.size for row in got.rows)
        return Page(rows=got.rows, last=got.last, total_size_bytes=total)

    def count_binary(self, who: Principal, flt: Filter) -> int:
        """How many binary items match ``flt``."""
        return self._count(where(who, flt, Kind.BINARY), Kind.BINARY)

    def binary_by_ids(self, who: Principal, ids: Sequence[str]) -> list[BinaryRow]:
        """The items with these ids in scope, in the order asked, each once.

        Ids that do not exist, or exist outside the caller's scope, are skipped.
        """
        wanted = list(dict.fromkeys(ids))
        found: dict[str, BinaryRow] = {}
        scope = where(who, Filter(), Kind.BINARY)
        with self._db.read() as conn:
            for chunk in _chunks(wanted):
                w = _and_ids(scope, chunk)
                sql = f"SELECT {_BINARY_COLUMNS} FROM {Kind.BINARY.source} WHERE {w.sql}"
                for raw in conn.execute(sql, w.params):
                    row = _binary_row(raw)
                    found[row.binary_data_id] = row
        return [found[i] for i in wanted if i in found]

    def delete_binary_by_ids(self, who: Principal, ids: Sequence[str]) -> int:
        """Deletes these items in scope (and blobs no longer referenced); returns count."""
        scope = where(who, Filter(), Kind.BINARY)
        return self._delete_binary([_and_ids(scope, chunk) for chunk in _chunks(list(ids))])

    def delete_binary_by_filter(self, who: Principal, flt: Filter) -> int:
        """Deletes matching items (and blobs no longer referenced); returns count."""
        return self._delete_binary([where(who, flt, Kind.BINARY)])

    # -- both ----------------------------------------------------------------------

    def tags_by_filter(self, who: Principal, flt: Filter) -> list[str]:
        """The distinct tags of tabular and binary data matching ``flt``, sorted.

        Tags live on capture contexts, so this asks, per context of the caller's
        organization, whether any row of it matches: far fewer contexts than rows.
        """
        tags: set[str] = set()
        with self._db.read() as conn:
            for kind in (Kind.TABULAR, Kind.BINARY):
                w = where(who, flt, kind)
                sql = (
                    "SELECT c.tags FROM contexts c LEFT JOIN parts p ON p.part_id = c.part_id "
                    f"WHERE c.org_id = ? AND EXISTS (SELECT 1 FROM {kind.table} {kind.alias} "
                    f"WHERE {kind.alias}.context_id = c.context_id AND {w.sql})"
                )
                for (text,) in conn.execute(sql, (who.org_id, *w.params)):
                    tags.update(_tags(text))
        return sorted(tags)

    def sql_query(self, who: Principal, sql: str, *, max_rows: int) -> list[Document]:
        """Runs read-only SQL over the caller's ``readings`` (see ``_sandbox``)."""
        return _sandbox.run_sql(
            self._db, who, sql, max_rows=max_rows, budget_steps=self._sql_budget_steps
        )

    # -- helpers -------------------------------------------------------------------

    def _page(
        self,
        who: Principal,
        flt: Filter,
        page: PageRequest,
        kind: Kind,
        columns: str,
        convert: Callable[[Row], _RowT],
    ) -> Page[_RowT]:
        w = where(who, flt, kind)
        limit = page_limit(page)
        cursor = after(kind, page)
        if cursor is not None:
            w = Where(f"{w.sql} AND {cursor.sql}", (*w.params, *cursor.params))
        sql = (
            f"SELECT {columns} FROM {kind.source} WHERE {w.sql} "
            f"ORDER BY {order_by(kind, page)} LIMIT ?"
        )
        with self._db.read() as conn:
            raw: list[Row] = conn.execute(sql, (*w.params, limit + 1)).fetchall()
        rows = tuple(convert(r) for r in raw[:limit])
        # Every non-empty page carries the cursor of its last row, as Viam's do: the
        # SDK's documented loop stops on an empty page, and a page that says "" while
        # holding rows made it start over from the first page forever.
        tail = raw[:limit][-1] if raw else None
        last = encode_cursor(_int(tail[13]), _key(tail[12])) if tail is not None else ""
        return Page(rows=rows, last=last)

    def _count(self, w: Where, kind: Kind) -> int:
        with self._db.read() as conn:
            row = conn.execute(f"SELECT count(*) FROM {kind.source} WHERE {w.sql}", w.params)
            return _int(row.fetchone()[0])

    def _stream(self, who: Principal, flt: Filter) -> Iterator[TabularRow]:
        where(who, flt, Kind.TABULAR)  # fail now on a filter out of scope
        return self._stream_pages(who, flt)

    def _stream_pages(self, who: Principal, flt: Filter) -> Iterator[TabularRow]:
        page = PageRequest(limit=STREAM_BATCH, order=SortOrder.ASCENDING)
        while True:
            got = self.tabular_by_filter(who, flt, page)  # one read transaction
            yield from got.rows
            if not got.last:
                return
            page = PageRequest(limit=STREAM_BATCH, last=got.last, order=SortOrder.ASCENDING)

    def _delete_binary(self, conditions: list[Where]) -> int:
        deleted = 0
        refs: set[BlobRef] = set()
        with self._db.write() as conn:
            for w in conditions:
                select = f"SELECT b.binary_data_id FROM {Kind.BINARY.source} WHERE {w.sql}"
                for sha, size, offset in conn.execute(
                    "SELECT sha256, size, blob_offset FROM binary "
                    f"WHERE binary_data_id IN ({select})",
                    w.params,
                ):
                    refs.add(BlobRef(str(sha), _int(size), _int(offset)))
                deleted += conn.execute(
                    f"DELETE FROM binary WHERE binary_data_id IN ({select})", w.params
                ).rowcount
            conn.executemany(
                "INSERT OR IGNORE INTO pending_frees (sha256, blob_offset, size) VALUES (?, ?, ?)",
                [(r.sha256, r.offset, r.size) for r in refs],
            )
        if refs:
            self._remove_unreferenced(refs)
        return deleted

    def free_pending(self) -> int:
        """Frees the blob ranges of deletes a crash interrupted; returns how many.

        The store calls it at open (with ``sweep``), before other threads use it.
        """
        with self._db.read() as conn:
            refs = {
                BlobRef(str(sha), size=_int(size), offset=_int(offset))
                for sha, offset, size in conn.execute(
                    "SELECT sha256, blob_offset, size FROM pending_frees"
                )
            }
        if refs:
            self._remove_unreferenced(refs)
        return len(refs)

    def _remove_unreferenced(self, refs: set[BlobRef]) -> None:
        # After the delete commits (a crash leaves an orphan blob, swept at open,
        # never a row without its blob), and under the write lock again: ingest
        # checks that a new row's blob exists under that lock, so a blob cannot
        # vanish under a row committed meanwhile. A blob an open upload has
        # already adopted is kept whole, as the open-time sweep does. A blob other
        # rows still reference loses only the deleted ranges no row overlaps. The
        # delete recorded each range in ``pending_frees``; a range leaves it only
        # once freed, so a crash before the punch is finished by ``free_pending``.
        with self._db.write() as conn:
            pending = {
                bytes(row[0]).hex()
                for row in conn.execute(
                    "SELECT sha256 FROM uploads WHERE status = ?", (int(UploadStatus.OPEN),)
                )
            }
            for sha in sorted({ref.sha256 for ref in refs} - pending):
                if not _referenced(conn, sha):
                    self._blobs.remove(sha)
                    continue
                for ref in sorted((r for r in refs if r.sha256 == sha), key=_by_offset):
                    if not _overlapped(conn, ref):
                        self._blobs.punch(ref)
            conn.executemany(
                "DELETE FROM pending_frees WHERE sha256 = ? AND blob_offset = ? AND size = ?",
                [(r.sha256, r.offset, r.size) for r in refs],
            )


# -- row decoding ------------------------------------------------------------------


def _metadata(raw: Row) -> StoredMetadata:
    s = [str(v) for v in raw[:12]]
    return StoredMetadata(
        organization_id=s[0],
        location_id=s[1],
        robot_name=s[2],
        robot_id=s[3],
        part_name=s[4],
        part_id=s[5],
        component_type=s[6],
        component_name=s[7],
        method_name=s[8],
        method_parameters=_method_parameters(s[9]),
        tags=_tags(s[10]),
        mime_type=s[11],
    )


def _tabular_row(raw: Row) -> TabularRow:
    return TabularRow(
        id=str(raw[12]),
        metadata=_metadata(raw),
        time_requested_ns=_int(raw[13]),
        time_received_ns=_int(raw[14]),
        time_synced_ns=_int(raw[15]),
        data=decode_data(str(raw[16])),
    )


def _binary_row(raw: Row) -> BinaryRow:
    annotations = None if raw[21] is None else decode_data(str(raw[21]))
    return BinaryRow(
        binary_data_id=str(raw[12]),
        metadata=_metadata(raw),
        blob=BlobRef(sha256=str(raw[16]), size=_int(raw[17]), offset=_int(raw[23])),
        time_requested_ns=_int(raw[13]),
        time_received_ns=_int(raw[14]),
        time_synced_ns=_int(raw[15]),
        file_name=str(raw[18]),
        file_ext=str(raw[19]),
        dataset_ids=tuple(str(d) for d in cast("list[object]", decode_json(str(raw[20])))),
        annotations=annotations,
        file_id=str(raw[22]),
    )


def _document(row: TabularRow) -> Document:
    m = row.metadata
    return {
        "_id": row.id,
        "organization_id": m.organization_id,
        "location_id": m.location_id,
        "robot_name": m.robot_name,
        "robot_id": m.robot_id,
        "part_name": m.part_name,
        "part_id": m.part_id,
        "component_type": m.component_type,
        "component_name": m.component_name,
        "method_name": m.method_name,
        "tags": list(m.tags),
        "time_requested": utc_datetime(row.time_requested_ns),
        "time_received": utc_datetime(row.time_received_ns),
        "data": dict(row.data),
    }


def utc_datetime(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC ``datetime`` (microseconds kept)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _method_parameters(text: str) -> tuple[tuple[str, AnyValue], ...]:
    stored = cast("dict[str, dict[str, str]]", decode_json(text))
    return tuple(
        (name, AnyValue(type_url=v["type_url"], value=base64.b64decode(v["value"])))
        for name, v in stored.items()
    )


def _tags(text: object) -> tuple[str, ...]:
    return tuple(str(t) for t in cast("list[object]", decode_json(str(text))))


def _int(value: object) -> int:
    return cast("int", value)


def _key(value: object) -> int | str:
    return value if isinstance(value, int | str) else str(value)


def _resource_filter(
    part_id: str, resource_name: str, resource_subtype: str, method_name: str
) -> Filter:
    return Filter(
        part_id=part_id,
        component_name=resource_name,
        component_type=resource_subtype,
        method=method_name,
    )


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def _and_ids(scope: Where, ids: list[str]) -> Where:
    marks = ", ".join("?" * len(ids))
    return Where(f"{scope.sql} AND b.binary_data_id IN ({marks})", (*scope.params, *ids))


def _referenced(conn: sqlite3.Connection, sha: str) -> bool:
    row = conn.execute("SELECT 1 FROM binary WHERE sha256 = ? LIMIT 1", (sha,)).fetchone()
    return row is not None


def _by_offset(ref: BlobRef) -> int:
    return ref.offset


def _overlapped(conn: sqlite3.Connection, ref: BlobRef) -> bool:
    """Whether any row still needs a byte of ``ref``'s range (identical files share blobs)."""
    row = conn.execute(
        "SELECT 1 FROM binary WHERE sha256 = ? AND blob_offset < ? AND blob_offset + size > ? "
        "LIMIT 1",
        (ref.sha256, ref.offset + ref.size, ref.offset),
    ).fetchone()
    return row is not None

"""Readings and their contexts in the embedded store: tabular rows in batches, binary rows.

Tabular ``data`` is stored as the JSON text of ``cloud.reading_json`` (which
spells non-finite floats as strings, since SQLite's JSON functions reject
``NaN`` and ``Infinity``). Every writer of readings (``IngestMixin``,
``SmallUploadsMixin``) goes through here.
"""

from __future__ import annotations

import base64
import itertools
import sqlite3
from typing import TYPE_CHECKING

from cloud.errors import FailedPrecondition, InvalidArgument
from cloud.model import TabularJsonRows
from cloud.reading_json import compact as _compact
from cloud.reading_json import reading_json

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cloud.model import BinaryRecord, CaptureContext, PartInfo, TabularRecord
    from cloud.store.sqlite._blobs import BlobDir

_BATCH = 1000  # tabular rows per executemany while streaming an upload's readings
_INSERT_BINARY = (
    "INSERT INTO binary (binary_data_id, org_id, context_id, sha256, size, blob_offset, "
    "time_requested, time_received, time_synced, mime_type, file_name, file_ext, dataset_ids, "
    "annotations, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_CONTEXT_KEY = (
    "org_id = ? AND location_id = ? AND part_id = ? AND component_type = ? AND "
    "component_name = ? AND method_name = ? AND method_parameters = ? AND tags = ? AND "
    "mime_type = ?"
)
_INSERT_TABULAR = (
    "INSERT INTO tabular (org_id, context_id, time_requested, time_received, time_synced, "
    "data, file_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _insert_tabular(
    conn: sqlite3.Connection,
    part: PartInfo,
    ctx: CaptureContext,
    encoded: Iterable[tuple[int, int, str]],
    synced: int,
    file_id: str,
    context_id: int | None = None,
) -> int:
    """Streams encoded readings (``_encode_record``) into ``tabular`` in batches.

    ``context_id`` is the context row of (part, ctx) if the caller knows it.
    """
    count = 0
    readings = iter(encoded)
    org = part.org_id
    while batch := list(itertools.islice(readings, _BATCH)):
        if context_id is None:  # only readings need a context row
            context_id = _context_id(conn, part, ctx)
        rows = [
            (org, context_id, requested, received, synced, data, file_id)
            for requested, received, data in batch
        ]
        conn.executemany(_INSERT_TABULAR, rows)
        count += len(batch)
    return count


def _context_id(conn: sqlite3.Connection, part: PartInfo, ctx: CaptureContext) -> int:
    """The id of the context row for (part, ctx), created if missing (get-or-create)."""
    params = _compact(
        {
            name: {"type_url": value.type_url, "value": base64.b64encode(value.value).decode()}
            for name, value in ctx.method_parameters
        },
        sort_keys=True,
    )
    key = (
        part.org_id,
        part.location_id,
        part.part_id,
        ctx.component_type,
        ctx.component_name,
        ctx.method_name,
        params,
        _compact(sorted(set(ctx.tags))),
        ctx.mime_type,
    )
    row = conn.execute(f"SELECT context_id FROM contexts WHERE {_CONTEXT_KEY}", key).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO contexts (org_id, location_id, part_id, component_type, "
            "component_name, method_name, method_parameters, tags, mime_type) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            key,
        )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table
        return cursor.lastrowid
    return _int(row[0])


def _encoded(tabular: Iterable[TabularRecord] | TabularJsonRows) -> Iterable[tuple[int, int, str]]:
    """Readings as ``(requested, received, JSON)``: as given, or encoded one by one."""
    if isinstance(tabular, TabularJsonRows):
        return tabular.rows
    return itertools.starmap(_encode_record, enumerate(tabular))


def _encode_record(index: int, record: TabularRecord) -> tuple[int, int, str]:
    return (
        record.time_requested_ns,
        record.time_received_ns,
        reading_json(record.data, f"record {index} data"),
    )


def _int(value: object) -> int:
    assert isinstance(value, int)  # an INTEGER column
    return value


def _insert_binary(
    conn: sqlite3.Connection,
    blobs: BlobDir,
    part: PartInfo,
    ctx: CaptureContext,
    context_id: int,
    record: BinaryRecord,
    synced: int,
    file_id: str,
) -> None:
    """Inserts one binary item's row, after checking its blob is stored."""
    # Checked inside the write transaction: blob deletion re-checks references
    # under the same lock, so a blob seen here cannot vanish under the new row.
    if not blobs.exists(record.blob):
        raise FailedPrecondition(
            f"binary {record.binary_data_id}: blob {record.blob.sha256} "
            f"({record.blob.size} bytes at offset {record.blob.offset}) is not stored; "
            "store it again"
        )
    annotations = (
        None
        if record.annotations is None
        else reading_json(record.annotations, f"binary {record.binary_data_id} annotations")
    )
    row = (
        record.binary_data_id,
        part.org_id,
        context_id,
        record.blob.sha256,
        record.blob.size,
        record.blob.offset,
        record.time_requested_ns,
        record.time_received_ns,
        synced,
        record.mime_type or ctx.mime_type,
        record.file_name,
        record.file_ext or ctx.file_extension,
        _compact(sorted(set(ctx.dataset_ids))),
        annotations,
        file_id,
    )
    try:
        conn.execute(_INSERT_BINARY, row)
    except sqlite3.IntegrityError:
        raise InvalidArgument(f"binary data id {record.binary_data_id!r} already exists") from None

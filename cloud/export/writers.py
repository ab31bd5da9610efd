"""The export's output files: readings as JSON Lines or CSV, binary files plus an index.

Every writer appends to one file that it first cuts back to the byte length the
state recorded (``offset``), so a page written after the last checkpoint is
dropped before it is fetched again. ``sync()`` flushes and fsyncs, then returns
the new length: the driver records it only after the data is durable.

Layout under ``DIR``:

- ``tabular.jsonl``: one JSON object per reading, keys ``TABULAR_COLUMNS``;
- ``tabular.csv``: the same columns with ``tags`` and ``data`` as JSON text, so
  the header is fixed before the first page (no two passes, no column drift);
- ``binary/<component>/<binary id><ext>``: each file, written as ``.part``,
  fsynced, then renamed; a file already there with the right size is kept;
- ``binary/index.jsonl``: one JSON object per file, its path relative to ``binary/``.

Example::

    writer = JsonlWriter(out / "tabular.jsonl", offset=state.offset)
    nbytes = writer.write(page.records)
    offset = writer.sync()
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from typing import TYPE_CHECKING, final

from cloud.export.source import ExportError
from cloud.export.state import fsync_dir

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from actors.codec import JsonValue
    from cloud.export.source import BinaryItem, Record

TABULAR_COLUMNS = (
    "time_requested",
    "time_received",
    "part_id",
    "component_type",
    "component_name",
    "method_name",
    "tags",
    "data",
)
JSON_COLUMNS = frozenset({"tags", "data"})  # CSV cells holding JSON text
INDEX_NAME = "index.jsonl"
PART_SUFFIX = ".part"
MAX_NAME_CHARS = 100

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_EXT = re.compile(r"(\.[A-Za-z0-9_-]{1,16}){1,3}")
# ProtoJSON's spelling of the floats JSON cannot carry.
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def finite(value: JsonValue) -> JsonValue:
    """``value`` with NaN and infinities spelled as ProtoJSON strings, so it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_text(value: JsonValue) -> str:
    """Compact JSON for ``value``, UTF-8 as is, never NaN."""
    return json.dumps(finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def safe_name(text: str) -> str:
    """A file name for ``text`` that is safe on any file system and unique per ``text``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``;
    when that changes anything (or the name is long or empty), a hash of
    ``text`` is appended so two different texts never share a name.

    Example::

        safe_name("cam")  # "cam"
        safe_name("org/loc/f1")  # "org_loc_f1-<10 hex digits>"
    """
    safe = _UNSAFE.sub("_", text).lstrip(".")
    if safe == text and safe and len(safe) <= MAX_NAME_CHARS:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{safe[:MAX_NAME_CHARS]}-{digest}" if safe else digest


def safe_ext(ext: str) -> str:
    """``ext`` with a leading dot if it looks like an extension (``.jpg``, ``.tar.gz``), else ""."""
    if ext and not ext.startswith("."):
        ext = f".{ext}"
    return ext if _EXT.fullmatch(ext) else ""


@final
class AppendFile:
    """A file opened for appending at a checkpoint: cut back to ``offset`` on open.

    Raises:
        ExportError: the file is shorter than ``offset`` (it was changed or lost
            since the checkpoint), or cannot be opened.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ExportError(f"cannot open {path}: {exc.strerror}") from None
        self._fh = os.fdopen(fd, "r+b")
        size = os.fstat(fd).st_size
        if size < offset:
            self._fh.close()
            raise ExportError(
                f"{path} has {size} bytes but the export state recorded {offset}; "
                "it changed since the last run: use --restart"
            )
        self._fh.truncate(offset)
        self._fh.seek(offset)
        self.offset = offset

    def write(self, data: bytes) -> None:
        """Appends ``data`` (buffered; durable after ``sync``)."""
        self._fh.write(data)

    def sync(self) -> int:
        """Flushes and fsyncs; returns the file's length."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.offset = self._fh.tell()
        return self.offset

    def close(self) -> None:
        """Closes the file (without syncing)."""
        self._fh.close()


@final
class JsonlWriter:
    """Readings as JSON Lines: one compact object per line, keys in ``TABULAR_COLUMNS`` order."""

    def __init__(self, path: Path, offset: int) -> None:
        self._file = AppendFile(path, offset)

    def write(self, records: Sequence[Record]) -> int:
        """Appends one line per record; returns the bytes written."""
        data = "".join(json_text(_ordered(r)) + "\n" for r in records).encode()
        self._file.write(data)
        return len(data)

    def sync(self) -> int:
        """See ``AppendFile.sync``."""
        return self._file.sync()

    def close(self) -> None:
        """Closes the file."""
        self._file.close()


@final
class CsvWriter:
    """Readings as RFC 4180 CSV with a fixed header; ``tags`` and ``data`` cells hold JSON."""

    def __init__(self, path: Path, offset: int) -> None:
        self._file = AppendFile(path, offset)
        if offset == 0:
            self._file.write(_csv_rows([list(TABULAR_COLUMNS)]))

    def write(self, records: Sequence[Record]) -> int:
        """Appends one row per record; returns the bytes written."""
        data = _csv_rows([_csv_cells(r) for r in records])
        self._file.write(data)
        return len(data)

    def sync(self) -> int:
        """See ``AppendFile.sync``."""
        return self._file.sync()

    def close(self) -> None:
        """Closes the file."""
        self._file.close()


def _ordered(record: Record) -> dict[str, JsonValue]:
    return {column: record.get(column) for column in TABULAR_COLUMNS}


def _csv_cells(record: Record) -> list[str]:
    cells = []
    for column in TABULAR_COLUMNS:
        value = record.get(column)
        if column in JSON_COLUMNS:
            cells.append(json_text(value))
        else:
            cells.append("" if value is None else str(value))
    return cells


def _csv_rows(rows: Iterable[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


@final
class BinaryWriter:
    """Binary files under ``root/<component>/`` and their ``root/index.jsonl``."""

    def __init__(self, root: Path, offset: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root
        self._index = AppendFile(root / INDEX_NAME, offset)
        self._dirs: set[Path] = set()
        self.skipped = 0

    def write(self, items: Sequence[BinaryItem]) -> int:
        """Stores each item's file (unless already complete) and indexes it.

        Returns:
            The payload bytes of the items (written or kept).
        """
        lines = []
        for item in items:
            name = safe_name(item.binary_data_id) + safe_ext(item.file_ext)
            folder = safe_name(item.component_name or "_")
            self._store(self._root / folder, name, item.payload)
            lines.append(json_text({"file": f"{folder}/{name}", **item.metadata}) + "\n")
        self._index.write("".join(lines).encode())
        return sum(len(item.payload) for item in items)

    def _store(self, folder: Path, name: str, payload: bytes) -> None:
        path = folder / name
        try:
            if path.stat().st_size == len(payload):
                self.skipped += 1  # renamed into place by an earlier run: complete
                return
        except FileNotFoundError:
            pass
        folder.mkdir(exist_ok=True)
        part = folder / (name + PART_SUFFIX)
        with part.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
        self._dirs.add(folder)

    def sync(self) -> int:
        """Makes this page's files, renames and index lines durable; returns the index length."""
        for folder in sorted(self._dirs):
            fsync_dir(folder)
        if self._dirs:
            fsync_dir(self._root)  # new component directories
        self._dirs.clear()
        return self._index.sync()

    def close(self) -> None:
        """Closes the index."""
        self._index.close()

    def remove_leftovers(self) -> None:
        """Deletes ``.part`` files an interrupted run left behind (call when done)."""
        for part in self._root.glob(f"*/*{PART_SUFFIX}"):
            part.unlink(missing_ok=True)

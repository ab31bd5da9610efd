"""``ferry inspect``: capture files as JSON Lines, streamed record by record.

For each file, one ``header`` line and then one ``record`` line per reading; with
``--summary``, one ``summary`` line per file and a final ``totals`` line. A file
that ends early or holds bad bytes prints everything intact first, then one line
on stderr naming the file and byte offset; the command goes on with the next
file and exits with status 1. Output is valid JSON even for NaN and infinities
(which JSON cannot hold): they are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, as in protobuf's JSON mapping.

Example::

    $ ferry inspect ~/.viam/capture/rdk_component_sensor/env/Readings
    {"kind":"header","path":".../2026-08-21T15_04_05.123456Z.capture",...}
    {"kind":"record","path":"...","offset":64,"time_requested":"2026-08-21T15:04:05.123456789Z",...}
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, final

from actors.codec import (
    CAPTURE_EXT,
    PROG_EXT,
    CaptureFileError,
    CaptureFileReader,
    CorruptCaptureFile,
    RawRecord,
    SensorRecord,
    WireError,
    decode_sensor_data,
    decode_struct,
    decode_varint,
    encode_varint,
    extension_for_mime,
)
from protos.gen.viam.app.data import v1 as data
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Mapping

    from protos.gen.google import protobuf as pb

COMMAND = "inspect"
CAPTURE_SUFFIXES = (CAPTURE_EXT, PROG_EXT)
PROG = f"ferry {COMMAND}"

_NS = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
# SensorMetadata.mime_type (an enum) as the MIME string the header would carry.
_ENUM_MIME = {
    int(datasync.MimeType.IMAGE_JPEG): "image/jpeg",
    int(datasync.MimeType.IMAGE_PNG): "image/png",
    int(datasync.MimeType.APPLICATION_PCD): "pointcloud/pcd",
    int(datasync.MimeType.VIDEO_MP4): "video/mp4",
}
# A header's file_extension becomes part of a file name: accept only a plain one.
_SAFE_EXT = re.compile(r"\.[A-Za-z0-9_-]{1,16}")
_FALLBACK_EXT = ".bin"
_NAME_ATTEMPTS = 1000
_JSON_SEPARATORS = (",", ":")
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


@final
@dataclass(frozen=True, slots=True)
class InspectOptions:
    """What ``ferry inspect`` was asked to do.

    Attributes:
        paths: files and directories, in the order given.
        summary: one line per file instead of one per record.
        binary_out: where binary payloads are written, if anywhere.
    """

    paths: tuple[str, ...]
    summary: bool = False
    binary_out: Path | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> InspectOptions:
        """Builds options from the parsed ``ferry inspect`` arguments."""
        paths: list[str] = args.paths
        summary: bool = args.summary
        binary_out: str | None = args.binary_out
        return cls(tuple(paths), summary, Path(binary_out) if binary_out else None)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry inspect`` to the ``ferry`` parser."""
    parser = subparsers.add_parser(
        COMMAND,
        help="print capture files as JSON Lines",
        description=(
            "Print the header and records of capture files (.capture, .prog) as JSON Lines. "
            "A directory is searched recursively, in sorted order. Exits 1 if any file "
            "is missing, truncated or corrupt (after printing what is intact)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="capture file or directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--summary",
        action="store_true",
        help="one line per file (records, bytes, time range) and a final totals line",
    )
    mode.add_argument(
        "--binary-out",
        metavar="DIR",
        help="write each binary payload to DIR as <file stem>-<offset><ext>",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    return inspect_paths(InspectOptions.from_namespace(args), out=sys.stdout, err=sys.stderr)


def inspect_paths(options: InspectOptions, *, out: TextIO, err: TextIO) -> int:
    """Inspects every path in ``options``, writing JSON Lines to ``out``.

    Args:
        options: the paths and output mode.
        out: where the JSON Lines go.
        err: where one line per unreadable path or file goes.

    Returns:
        0 when every file was read in full, else 1.

    Example::

        options = InspectOptions(("/tmp/capture",), summary=True)
        status = inspect_paths(options, out=sys.stdout, err=sys.stderr)
    """
    sink = _Sink(out, err)
    totals = _Totals()
    for target in options.paths:
        for path in _expand(target, sink):
            _inspect_path(path, options, sink, totals)
    if options.summary:
        sink.line(totals.as_json(errors=sink.errors))
    return 0 if sink.errors == 0 else 1


@final
class _Sink:
    """stdout for lines, stderr for errors; stdout is flushed first so they interleave right."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.errors = 0

    def line(self, obj: Mapping[str, object]) -> None:
        self._out.write(dumps(obj) + "\n")

    def error(self, message: str) -> None:
        self.errors += 1
        self._out.flush()
        self._err.write(f"{PROG}: {message}\n")
        self._err.flush()


@final
@dataclass(slots=True)
class _Totals:
    files: int = 0
    records: int = 0
    bytes: int = 0
    payload_bytes: int = 0

    def as_json(self, *, errors: int) -> dict[str, object]:
        return {
            "kind": "totals",
            "files": self.files,
            "records": self.records,
            "bytes": self.bytes,
            "payload_bytes": self.payload_bytes,
            "errors": errors,
        }


@final
@dataclass(slots=True)
class _FileStats:
    records: int = 0
    payload_bytes: int = 0
    first_requested_ns: int | None = None
    last_requested_ns: int | None = None

    def add(self, frame: RawRecord, record: SensorRecord) -> None:
        self.records += 1
        self.payload_bytes += payload_size(frame.body)
        if self.first_requested_ns is None:
            self.first_requested_ns = record.time_requested_ns
        self.last_requested_ns = record.time_requested_ns


# --- which files -------------------------------------------------------------------------


def _expand(target: str, sink: _Sink) -> Iterator[str]:
    """The files ``target`` names: itself, or the capture files under a directory."""
    if os.path.isdir(target):
        yield from _walk(target, sink)
    elif os.path.lexists(target):
        yield target
    else:
        sink.error(f"{target}: no such file or directory")


def _walk(root: str, sink: _Sink) -> Iterator[str]:
    def report(exc: OSError) -> None:
        sink.error(f"{exc.filename}: {exc.strerror or exc}")

    found: list[Path] = []
    for directory, _dirs, files in os.walk(root, onerror=report):
        found.extend(Path(directory, name) for name in files if name.endswith(CAPTURE_SUFFIXES))
    # Path order compares part by part, so a directory's files stay together.
    for path in sorted(found):
        yield str(path)


# --- one file ----------------------------------------------------------------------------


def _inspect_path(path: str, options: InspectOptions, sink: _Sink, totals: _Totals) -> None:
    try:
        _inspect_file(path, options, sink, totals)
    except CaptureFileError as exc:
        sink.error(str(exc))  # "<path>: offset <n>: <reason>"
    except BrokenPipeError:
        raise  # stdout's reader is gone: not this file's fault, and the end of the run
    except OSError as exc:
        sink.error(f"{exc.filename or path}: {exc.strerror or exc}")


def _inspect_file(path: str, options: InspectOptions, sink: _Sink, totals: _Totals) -> None:
    with CaptureFileReader(Path(path)) as reader:
        header = reader.header
        if not options.summary:
            sink.line(header_json(path, header))
        stats = _FileStats()
        error: CaptureFileError | None = None
        try:
            for frame, record in _records(reader):
                stats.add(frame, record)
                if not options.summary:
                    sink.line(_record_line(path, header, frame, record, options.binary_out))
        except CaptureFileError as exc:
            error = exc
    size = os.stat(path).st_size
    totals.files += 1
    totals.records += stats.records
    totals.bytes += size
    totals.payload_bytes += stats.payload_bytes
    if options.summary:
        sink.line(_summary_json(path, header, stats, size, error))
    if error is not None:
        raise error


def _records(reader: CaptureFileReader) -> Iterator[tuple[RawRecord, SensorRecord]]:
    # Raw frames as well as records: the summary counts payload bytes, which a
    # decoded record no longer knows for tabular data.
    for frame in reader.raw_records():
        try:
            record = decode_sensor_data(frame.body)
        except WireError as exc:
            raise CorruptCaptureFile(
                reader.path, frame.offset, f"record is not a SensorData: {exc}"
            ) from None
        yield frame, record


def _record_line(
    path: str,
    header: datasync.DataCaptureMetadata,
    frame: RawRecord,
    record: SensorRecord,
    binary_out: Path | None,
) -> dict[str, object]:
    line = record_json(path, frame, record, header)
    if record.binary is not None and binary_out is not None:
        stem = f"{Path(path).stem}-{frame.offset}"
        ext = _binary_ext(header, record)
        line["binary_path"] = str(write_payload(binary_out, stem, ext, record.binary))
    return line


# --- JSON shapes -------------------------------------------------------------------------


def header_json(path: str, header: datasync.DataCaptureMetadata) -> dict[str, object]:
    """The ``header`` line for a file."""
    params = header.method_parameters or {}
    return {
        "kind": "header",
        "path": path,
        "component_type": header.component_type or "",
        "component_name": header.component_name or "",
        "method_name": header.method_name or "",
        "type": _data_type_name(header.type),
        "file_extension": header.file_extension or "",
        "tags": list(header.tags or ()),
        "mime_type": header.mime_type or "",
        "method_parameters": {key: any_json(params[key]) for key in sorted(params)},
    }


def record_json(
    path: str, frame: RawRecord, record: SensorRecord, header: datasync.DataCaptureMetadata
) -> dict[str, object]:
    """The ``record`` line for one reading (without ``binary_path``)."""
    line: dict[str, object] = {
        "kind": "record",
        "path": path,
        "offset": frame.offset,
        "bytes": frame.end - frame.offset,
        "time_requested": format_rfc3339(record.time_requested_ns),
        "time_received": format_rfc3339(record.time_received_ns),
    }
    if record.binary is not None:
        line["binary"] = {
            "size": len(record.binary),
            "sha256": hashlib.sha256(record.binary).hexdigest(),
            "mime_type": _mime(header, record),
        }
    else:
        line["data"] = record.struct  # None for a record with neither payload
    if record.annotations:
        line["annotations"] = annotations_json(record.annotations)
    if record.unknown_fields:
        line["unknown_fields"] = True
    return line


def _summary_json(
    path: str,
    header: datasync.DataCaptureMetadata,
    stats: _FileStats,
    size: int,
    error: CaptureFileError | None,
) -> dict[str, object]:
    line: dict[str, object] = {
        "kind": "summary",
        "path": path,
        "component_type": header.component_type or "",
        "component_name": header.component_name or "",
        "method_name": header.method_name or "",
        "type": _data_type_name(header.type),
        "records": stats.records,
        "bytes": size,
        "payload_bytes": stats.payload_bytes,
        "first_time_requested": _maybe_rfc3339(stats.first_requested_ns),
        "last_time_requested": _maybe_rfc3339(stats.last_requested_ns),
    }
    if error is not None:
        line["error"] = {"offset": error.offset, "reason": error.reason}
    return line


def any_json(message: pb.Any) -> dict[str, object]:
    """A ``google.protobuf.Any`` as its type URL, base64 value and, if known, its decoded value.

    Viam wraps each ``additional_params`` value as a ``google.protobuf.Value``;
    those and ``Struct`` are decoded, other types are left as bytes.
    """
    raw = message.value or b""
    out: dict[str, object] = {
        "type_url": message.type_url or "",
        "value": base64.b64encode(raw).decode("ascii"),
    }
    type_name = (message.type_url or "").rpartition("/")[2]
    try:
        if type_name == "google.protobuf.Value":
            out["decoded"] = _decode_value(raw)
        elif type_name == "google.protobuf.Struct":
            out["decoded"] = decode_struct(raw)
    except WireError:
        pass  # shown as bytes only
    return out


def _decode_value(raw: bytes) -> object:
    # A Value is decoded as the value of a one-entry Struct {"v": raw}: this
    # reuses the codec's Struct decoder instead of a second Value parser.
    entry = b"\x0a\x01v\x12" + encode_varint(len(raw)) + raw
    return decode_struct(b"\x0a" + encode_varint(len(entry)) + entry)["v"]


def annotations_json(raw: bytes) -> object:
    """``viam.app.data.v1.Annotations`` bytes as proto JSON, or base64 if they do not parse."""
    try:
        decoded: object = data.Annotations.parse(raw).to_dict()
    except Exception:  # betterproto2 raises assorted errors on bad input
        return {"undecodable": base64.b64encode(raw).decode("ascii")}
    return decoded


def format_rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with nine fraction digits.

    Example::

        format_rfc3339(1_000_000_001)  # "1970-01-01T00:00:01.000000001Z"
    """
    seconds, nanos = divmod(ns, _NS)
    try:
        t = _EPOCH + _dt.timedelta(seconds=seconds)
    except OverflowError:  # outside years 1-9999, which protobuf's Timestamp forbids
        return f"{ns}ns"
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{nanos:09d}Z"
    )


def _maybe_rfc3339(ns: int | None) -> str | None:
    return None if ns is None else format_rfc3339(ns)


def _data_type_name(value: datasync.DataType) -> str | int:
    # Unknown enum values stay numbers, as in protobuf's JSON mapping.
    number = int(value or 0)  # betterproto2 can leave a field None on odd input
    return datasync.DataType.betterproto_value_to_renamed_proto_names().get(number, number)


def _mime(header: datasync.DataCaptureMetadata, record: SensorRecord) -> str:
    return header.mime_type or _ENUM_MIME.get(record.mime_type, "")


def payload_size(body: bytes) -> int:
    """Bytes of a SensorData's payload (the Struct or the binary), from its serialized form.

    ``body`` must already have decoded (``decode_sensor_data``); the last payload
    field wins, as when decoding.
    """
    pos, end, size = 0, len(body), 0
    while pos < end:
        tag, pos = decode_varint(body, pos, end)
        wire = tag & 7
        if wire == 2:  # length-delimited
            length, pos = decode_varint(body, pos, end)
            if tag >> 3 in (2, 3):
                size = length
            pos += length
        elif wire == 0:
            pos = decode_varint(body, pos, end)[1]
        else:
            pos += 8 if wire == 1 else 4
    return size


# --- JSON text ---------------------------------------------------------------------------


def dumps(obj: object) -> str:
    """One line of strict JSON; NaN and infinities become strings."""
    try:
        return json.dumps(obj, allow_nan=False, separators=_JSON_SEPARATORS)
    except ValueError:  # a non-finite float somewhere: the rare, slow path
        return json.dumps(_finite(obj), allow_nan=False, separators=_JSON_SEPARATORS)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


# --- binary payloads ---------------------------------------------------------------------


def _binary_ext(header: datasync.DataCaptureMetadata, record: SensorRecord) -> str:
    ext = header.file_extension or ""
    if _SAFE_EXT.fullmatch(ext):
        return ext
    return extension_for_mime(_mime(header, record)) or _FALLBACK_EXT


def write_payload(directory: Path, stem: str, ext: str, payload: bytes) -> Path:
    """Writes ``payload`` to ``directory/<stem><ext>`` and returns the path.

    Never overwrites different bytes: if the name holds other content (two
    collectors' files made in the same microsecond), ``-1``, ``-2``… is added to
    the stem. A file with the same bytes is reused, so re-running is idempotent.

    Raises:
        OSError: the directory or file cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(_NAME_ATTEMPTS):
        target = directory / (f"{stem}{ext}" if attempt == 0 else f"{stem}-{attempt}{ext}")
        try:
            with open(target, "xb") as handle:
                handle.write(payload)
        except FileExistsError:
            if _holds(target, payload):
                return target
            continue
        return target
    raise FileExistsError(f"{directory / stem}{ext}: {_NAME_ATTEMPTS} names taken")


def _holds(path: Path, payload: bytes) -> bool:
    return path.stat().st_size == len(payload) and path.read_bytes() == payload

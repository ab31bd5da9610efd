"""What ``ferry inspect`` writes: each line's JSON shape, strict JSON text, binary payload files.

Kept apart from the command (``actors.inspect_cmd``), which finds and reads the
files, so the output format stays in one place; re-exported from there.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.codec import (
    CaptureFileError,
    RawRecord,
    SensorRecord,
    WireError,
    decode_struct,
    decode_varint,
    encode_varint,
    extension_for_mime,
)
from protos.gen.viam.app.data import v1 as data
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from pathlib import Path

    from protos.gen.google import protobuf as pb

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


# --- JSON shapes -------------------------------------------------------------------------


def _stream_fields(header: datasync.DataCaptureMetadata) -> dict[str, object]:
    """What names a file's stream, shared by its header and summary lines."""
    return {
        "component_type": header.component_type or "",
        "component_name": header.component_name or "",
        "method_name": header.method_name or "",
        "type": _data_type_name(header.type),
    }


def header_json(path: str, header: datasync.DataCaptureMetadata) -> dict[str, object]:
    """The ``header`` line for a file."""
    params = header.method_parameters or {}
    return {
        "kind": "header",
        "path": path,
        **_stream_fields(header),
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
        **_stream_fields(header),
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

"""Viam's upload messages to the cloud's domain records, validated.

Every ``InvalidArgument`` names the field that is wrong, so a client can fix its
request. Timestamps that arrive as ``datetime`` (betterproto2 unwraps
``google.protobuf.Timestamp``) keep microsecond precision; capture files, which
Ferry parses itself, keep nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import betterproto2

from cloud.errors import InvalidArgument
from cloud.model import AnyValue, CaptureContext, TabularRecord
from protos.gen.viam.app.data import v1 as data_pb
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from actors.codec import JsonObject
    from protos.gen.google.protobuf import Any as PbAny

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Longest id-like string field we accept (component names, tags, mime types…).
MAX_LABEL_CHARS = 1024


def timestamp_ns(value: dt.datetime | None) -> int:
    """Nanoseconds since the epoch of an unwrapped Timestamp (0 when unset)."""
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _label(value: str, where: str) -> str:
    if len(value) > MAX_LABEL_CHARS:
        raise InvalidArgument(f"{where}: longer than {MAX_LABEL_CHARS} characters")
    return value


def labels(values: Sequence[str], where: str) -> tuple[str, ...]:
    """Tags or dataset ids, deduplicated and sorted.

    Raises:
        InvalidArgument: one is too long; names ``where`` and its index.
    """
    return tuple(sorted({_label(v, f"{where}[{i}]") for i, v in enumerate(values)}))


def method_parameters(params: Mapping[str, PbAny | None]) -> tuple[tuple[str, AnyValue], ...]:
    """Method parameters kept verbatim, sorted by name."""
    return tuple(
        (name, AnyValue(value.type_url, value.value) if value else AnyValue("", b""))
        for name, value in sorted(params.items())
    )


def context_from_upload_metadata(md: datasync.UploadMetadata, where: str) -> CaptureContext:
    """The capture context of a Viam upload.

    Raises:
        InvalidArgument: a field is too long.
    """
    return CaptureContext(
        component_type=_label(md.component_type, f"{where}.component_type"),
        component_name=_label(md.component_name, f"{where}.component_name"),
        method_name=_label(md.method_name, f"{where}.method_name"),
        method_parameters=method_parameters(md.method_parameters),
        tags=labels(md.tags, f"{where}.tags"),
        dataset_ids=labels(md.dataset_ids, f"{where}.dataset_ids"),
        mime_type=_label(md.mime_type, f"{where}.mime_type"),
        file_extension=_label(md.file_extension, f"{where}.file_extension"),
    )


def context_from_header(
    header: datasync.DataCaptureMetadata, extra_tags: tuple[str, ...] = ()
) -> CaptureContext:
    """The capture context of a capture file, from its on-disk header."""
    return CaptureContext(
        component_type=_label(header.component_type, "header.component_type"),
        component_name=_label(header.component_name, "header.component_name"),
        method_name=_label(header.method_name, "header.method_name"),
        method_parameters=method_parameters(header.method_parameters),
        tags=tuple(sorted({*header.tags, *extra_tags})),
        mime_type=_label(header.mime_type, "header.mime_type"),
        file_extension=_label(header.file_extension, "header.file_extension"),
    )


def tabular_record(item: datasync.SensorData, where: str) -> TabularRecord:
    """A tabular reading from one ``SensorData``.

    Raises:
        InvalidArgument: the item carries binary data or no struct.
    """
    kind, value = betterproto2.which_one_of(item, "data")
    if kind != "struct" or value is None:
        what = "binary data" if kind == "binary" else "no data"
        raise InvalidArgument(f"{where}: a tabular upload needs a struct, found {what}")
    data: JsonObject = value.to_dict()
    meta = item.metadata or datasync.SensorMetadata()
    return TabularRecord(timestamp_ns(meta.time_requested), timestamp_ns(meta.time_received), data)


def binary_payload(item: datasync.SensorData, where: str) -> bytes:
    """The bytes of a binary ``SensorData``.

    Raises:
        InvalidArgument: the item carries a struct or nothing.
    """
    kind, value = betterproto2.which_one_of(item, "data")
    if kind != "binary" or not isinstance(value, bytes):
        what = "a struct" if kind == "struct" else "no data"
        raise InvalidArgument(f"{where}: a binary upload needs binary data, found {what}")
    return value


def annotations_json(annotations: data_pb.Annotations | None) -> JsonObject | None:
    """Annotations as JSON-like values (``None`` when there are none)."""
    if annotations is None or (not annotations.bboxes and not annotations.classifications):
        return None
    out: JsonObject = annotations.to_dict()
    return out


def annotations_from_bytes(raw: bytes, where: str) -> JsonObject | None:
    """Annotations from their serialized form (as kept in capture files).

    Raises:
        InvalidArgument: the bytes are not an ``Annotations`` message.
    """
    if not raw:
        return None
    try:
        return annotations_json(data_pb.Annotations.parse(raw))
    except Exception as exc:  # betterproto2 raises assorted errors on bad input
        raise InvalidArgument(f"{where}: annotations are not valid: {exc}") from None

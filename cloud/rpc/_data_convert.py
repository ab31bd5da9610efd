"""``viam.app.data.v1`` messages to and from the cloud's domain types.

The DataService handlers stay short because everything message-shaped lives
here: request parts become validated domain values (``Filter``,
``PageRequest``), stored rows become response messages. Every
``InvalidArgument`` names the field at fault, so a client can fix its request.

Times: the store keeps integer nanoseconds; betterproto2 unwraps
``google.protobuf.Timestamp`` to an aware UTC ``datetime``, which holds
microseconds, so times going out are floored to the microsecond (exactly what
the Timestamp would have carried from a Viam client in the first place).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct as _binary
from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument
from cloud.ingest.convert import timestamp_ns
from cloud.model import Filter, PageRequest, SortOrder, TagsMode
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.google.protobuf import ListValue, Struct, Value
from protos.gen.viam.app.data import v1 as data_pb

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from actors.codec import JsonObject, JsonValue
    from cloud.model import AnyValue, BinaryRow, StoredMetadata, TabularRow

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Longest string we accept in a filter field (ids, names, tags, mime types).
MAX_FIELD_CHARS = 1024
# Most values one repeated filter field may list (tags, location ids…).
MAX_LIST_ITEMS = 1000
_TYPE_PREFIX = "type.googleapis.com/google.protobuf."


# -- times ---------------------------------------------------------------------


def ns_to_datetime(ns: int) -> dt.datetime | None:
    """An aware UTC ``datetime`` for ``ns`` (floored to the microsecond); ``None`` for 0.

    ``0`` is the store's "unset"; leaving the Timestamp unset is how protobuf
    says the same thing.
    """
    if ns == 0:
        return None
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def interval_ns(interval: data_pb.CaptureInterval | None, where: str) -> tuple[int, int]:
    """The ``(start_ns, end_ns)`` of a capture interval; ``0`` is an open end.

    Raises:
        InvalidArgument: both ends are set and start is after end.
    """
    if interval is None:
        return 0, 0
    start, end = timestamp_ns(interval.start), timestamp_ns(interval.end)
    if start and end and start > end:
        raise InvalidArgument(f"{where}: start {interval.start} is after end {interval.end}")
    return start, end


# -- request parts -------------------------------------------------------------


def check_text(value: str, where: str) -> str:
    """``value`` if it is not too long for a filter field.

    Raises:
        InvalidArgument: longer than ``MAX_FIELD_CHARS``.
    """
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidArgument(f"{where}: longer than {MAX_FIELD_CHARS} characters")
    return value


def _texts(values: Sequence[str], where: str) -> tuple[str, ...]:
    if len(values) > MAX_LIST_ITEMS:
        raise InvalidArgument(f"{where}: more than {MAX_LIST_ITEMS} values")
    return tuple(dict.fromkeys(check_text(v, f"{where}[{i}]") for i, v in enumerate(values)))


def tags_mode(
    tags_filter: data_pb.TagsFilter | None, where: str
) -> tuple[TagsMode, tuple[str, ...]]:
    """The tags mode and tags of a ``TagsFilter`` (no filter: no constraint).

    Raises:
        InvalidArgument: the type is not a known ``TagsFilterType``, or a tag is
            too long.
    """
    if tags_filter is None:
        return TagsMode.UNSPECIFIED, ()
    try:
        mode = TagsMode(int(tags_filter.type))
    except ValueError:
        raise InvalidArgument(
            f"{where}.type: unknown TagsFilterType {int(tags_filter.type)}"
        ) from None
    return mode, _texts(tags_filter.tags, f"{where}.tags")


def to_filter(msg: data_pb.Filter | None, where: str = "filter") -> Filter:
    """The domain filter of a ``viam.app.data.v1.Filter`` (``None``: match everything).

    Raises:
        InvalidArgument: an enum value is unknown, a value is too long or the
            interval runs backwards; the message names the field.
    """
    if msg is None:
        return Filter()
    start_ns, end_ns = interval_ns(msg.interval, f"{where}.interval")
    mode, tags = tags_mode(msg.tags_filter, f"{where}.tags_filter")
    return Filter(
        component_name=check_text(msg.component_name, f"{where}.component_name"),
        component_type=check_text(msg.component_type, f"{where}.component_type"),
        method=check_text(msg.method, f"{where}.method"),
        robot_name=check_text(msg.robot_name, f"{where}.robot_name"),
        robot_id=check_text(msg.robot_id, f"{where}.robot_id"),
        part_name=check_text(msg.part_name, f"{where}.part_name"),
        part_id=check_text(msg.part_id, f"{where}.part_id"),
        location_ids=_texts(msg.location_ids, f"{where}.location_ids"),
        organization_ids=_texts(msg.organization_ids, f"{where}.organization_ids"),
        mime_types=_texts(msg.mime_type, f"{where}.mime_type"),
        start_ns=start_ns,
        end_ns=end_ns,
        tags_mode=mode,
        tags=tags,
        bbox_labels=_texts(msg.bbox_labels, f"{where}.bbox_labels"),
        dataset_id=check_text(msg.dataset_id, f"{where}.dataset_id"),
    )


def delete_filter(msg: data_pb.DeleteTabularFilter | None, where: str = "filter") -> Filter:
    """The domain filter of a ``DeleteTabularFilter`` (``None``: match everything).

    Raises:
        InvalidArgument: as ``to_filter``.
    """
    if msg is None:
        return Filter()
    mode, tags = tags_mode(msg.tags_filter, f"{where}.tags_filter")
    return Filter(
        location_ids=_texts(msg.location_ids, f"{where}.location_ids"),
        robot_id=check_text(msg.robot_id, f"{where}.robot_id"),
        part_id=check_text(msg.part_id, f"{where}.part_id"),
        component_type=check_text(msg.component_type, f"{where}.component_type"),
        component_name=check_text(msg.component_name, f"{where}.component_name"),
        method=check_text(msg.method, f"{where}.method"),
        tags_mode=mode,
        tags=tags,
    )


def data_request(msg: data_pb.DataRequest | None) -> tuple[Filter, PageRequest]:
    """The filter and page of a ``DataRequest`` (``None``: everything, first page).

    A limit of 0 means the store's default page size; limits above the store's
    maximum are capped by the store, not refused (Viam clients ask for large
    pages and expect to page on).

    Raises:
        InvalidArgument: unknown ``sort_order``, or a bad filter field.
    """
    if msg is None:
        return Filter(), PageRequest()
    try:
        order = SortOrder(int(msg.sort_order))
    except ValueError:
        raise InvalidArgument(
            f"data_request.sort_order: unknown Order {int(msg.sort_order)}"
        ) from None
    flt = to_filter(msg.filter, "data_request.filter")
    last = check_text(msg.last, "data_request.last")
    return flt, PageRequest(limit=msg.limit, last=last, order=order)


# -- JSON-like values ----------------------------------------------------------


def to_struct(data: JsonObject) -> Struct:
    """A ``google.protobuf.Struct`` holding ``data`` (nested values, None, bools, floats)."""
    return Struct.from_dict(dict(data))


def json_size(data: JsonObject) -> int:
    """The size in bytes of ``data`` as compact JSON: what a reading "weighs"."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def _wrapper(name: str, raw: bytes) -> JsonValue:
    """The value of a ``google.protobuf.*Value`` wrapper (its only field is number 1)."""
    defaults: dict[str, JsonValue] = {"BoolValue": False, "StringValue": "", "BytesValue": ""}
    value: JsonValue = defaults.get(name, 0)
    pos = 0
    while pos < len(raw):
        key, pos = _varint(raw, pos)
        wire = key & 7
        if wire == 0:
            n, pos = _varint(raw, pos)
            if name == "BoolValue":
                value = bool(n)
            elif name in ("Int64Value", "Int32Value") and n >= 1 << 63:
                value = n - (1 << 64)
            else:
                value = n
        elif wire == 1:
            value, pos = _binary.unpack_from("<d", raw, pos)[0], pos + 8
        elif wire == 5:
            value, pos = _binary.unpack_from("<f", raw, pos)[0], pos + 4
        elif wire == 2:
            size, pos = _varint(raw, pos)
            if pos + size > len(raw):
                raise ValueError("truncated")
            chunk, pos = raw[pos : pos + size], pos + size
            value = chunk.decode() if name == "StringValue" else base64.b64encode(chunk).decode()
        else:
            raise ValueError(f"wire type {wire}")
    return value


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def any_json(value: AnyValue) -> JsonValue:
    """A stored ``Any`` as a JSON-like value, for Struct-typed fields.

    Viam packs capture parameters as ``google.protobuf.Value`` (older robots as
    wrappers such as ``StringValue``): those are unpacked. Anything else, or
    bytes that do not parse, is shown the way ProtoJSON shows an unknown
    ``Any``: ``{"@type": ..., "value": <base64>}``.
    """
    url = value.type_url
    name = url.removeprefix(_TYPE_PREFIX) if url.startswith(_TYPE_PREFIX) else ""
    try:
        if name == "Value":
            unpacked: JsonValue = Value.parse(value.value).to_dict()
            return unpacked
        if name == "Struct":
            fields: JsonValue = Struct.parse(value.value).to_dict()
            return fields
        if name == "ListValue":
            items: JsonValue = ListValue.parse(value.value).to_dict()
            return items
        if name.endswith("Value") and name in _WRAPPERS:
            return _wrapper(name, value.value)
    except (ValueError, IndexError, _binary.error, UnicodeDecodeError):
        pass
    return {"@type": url, "value": base64.b64encode(value.value).decode()}


_WRAPPERS = frozenset(
    f"{kind}Value"
    for kind in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


def parameters_json(params: Iterable[tuple[str, AnyValue]]) -> dict[str, JsonValue]:
    """Stored method parameters as one JSON object (Viam's ``additional_params``)."""
    return {name: any_json(value) for name, value in params}


# -- responses -----------------------------------------------------------------


def capture_metadata(m: StoredMetadata) -> data_pb.CaptureMetadata:
    """The ``CaptureMetadata`` of a stored row; parameters are returned as stored."""
    return data_pb.CaptureMetadata(
        organization_id=m.organization_id,
        location_id=m.location_id,
        robot_name=m.robot_name,
        robot_id=m.robot_id,
        part_name=m.part_name,
        part_id=m.part_id,
        component_type=m.component_type,
        component_name=m.component_name,
        method_name=m.method_name,
        method_parameters={
            name: PbAny(type_url=v.type_url, value=v.value) for name, v in m.method_parameters
        },
        tags=list(m.tags),
        mime_type=m.mime_type,
    )


def tabular_page(rows: Sequence[TabularRow], last: str) -> data_pb.TabularDataByFilterResponse:
    """A ``TabularDataByFilterResponse`` for one page of rows.

    Rows that share capture metadata share one ``metadata`` entry (in order of
    first use), which each ``TabularData`` names by ``metadata_index``.
    ``count`` is the number of rows in the page and ``total_size_bytes`` their
    compact-JSON size.
    """
    index: dict[StoredMetadata, int] = {}
    metadata: list[data_pb.CaptureMetadata] = []
    data: list[data_pb.TabularData] = []
    size = 0
    for row in rows:
        at = index.get(row.metadata)
        if at is None:
            at = index[row.metadata] = len(metadata)
            metadata.append(capture_metadata(row.metadata))
        data.append(
            data_pb.TabularData(
                data=to_struct(row.data),
                metadata_index=at,
                time_requested=ns_to_datetime(row.time_requested_ns),
                time_received=ns_to_datetime(row.time_received_ns),
            )
        )
        size += json_size(row.data)
    return data_pb.TabularDataByFilterResponse(
        metadata=metadata, data=data, count=len(data), last=last, total_size_bytes=size
    )


def binary_data(row: BinaryRow, payload: bytes = b"") -> data_pb.BinaryData:
    """A ``BinaryData`` for a stored item; ``payload`` is its bytes when asked for.

    ``uri`` stays empty (there are no signed URLs here) and the deprecated
    ``id`` is not set: clients use ``binary_data_id``.
    """
    annotations = None
    if row.annotations is not None:
        annotations = data_pb.Annotations.from_dict(dict(row.annotations))
    return data_pb.BinaryData(
        binary=payload,
        metadata=data_pb.BinaryMetadata(
            capture_metadata=capture_metadata(row.metadata),
            time_requested=ns_to_datetime(row.time_requested_ns),
            time_received=ns_to_datetime(row.time_received_ns),
            file_name=row.file_name,
            file_ext=row.file_ext,
            annotations=annotations,
            dataset_ids=list(row.dataset_ids),
            binary_data_id=row.binary_data_id,
            file_size_bytes=row.blob.size,
        ),
    )


def export_point(row: TabularRow) -> data_pb.ExportTabularDataResponse:
    """One ``ExportTabularDataResponse``: a reading and where it came from.

    ``time_captured`` is the reading's ``time_requested``, as in Viam.
    """
    m = row.metadata
    return data_pb.ExportTabularDataResponse(
        part_id=m.part_id,
        resource_name=m.component_name,
        resource_subtype=m.component_type,
        method_name=m.method_name,
        time_captured=ns_to_datetime(row.time_requested_ns),
        organization_id=m.organization_id,
        location_id=m.location_id,
        robot_name=m.robot_name,
        robot_id=m.robot_id,
        part_name=m.part_name,
        method_parameters=to_struct(parameters_json(m.method_parameters)),
        tags=list(m.tags),
        payload=to_struct(row.data),
    )


def latest_reading(row: TabularRow | None) -> data_pb.GetLatestTabularDataResponse:
    """A ``GetLatestTabularDataResponse``; empty (no payload) when there is no reading.

    Viam's SDK returns ``None`` exactly when the response has no payload.
    """
    if row is None:
        return data_pb.GetLatestTabularDataResponse()
    return data_pb.GetLatestTabularDataResponse(
        time_captured=ns_to_datetime(row.time_requested_ns),
        time_synced=ns_to_datetime(row.time_synced_ns),
        payload=to_struct(row.data),
    )

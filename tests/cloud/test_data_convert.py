"""Unit tests of ``cloud.rpc._data_convert``: DataService messages <-> domain values."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.errors import InvalidArgument
from cloud.ingest.convert import timestamp_ns
from cloud.model import (
    AnyValue,
    BinaryRow,
    BlobRef,
    Filter,
    PageRequest,
    SortOrder,
    StoredMetadata,
    TabularRow,
    TagsMode,
)
from cloud.rpc import _data_convert as conv
from protos.gen.google.protobuf import ListValue, Struct, Value
from protos.gen.viam.app.data import v1 as data_pb

T0 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
T0_NS = timestamp_ns(T0)
VALUE_URL = "type.googleapis.com/google.protobuf.Value"


def meta(
    component: str = "s1", tags: tuple[str, ...] = ("a",), **changes: object
) -> StoredMetadata:
    base = StoredMetadata(
        organization_id="org",
        location_id="loc",
        robot_name="robot",
        robot_id="rid",
        part_name="pname",
        part_id="pid",
        component_type="rdk:component:sensor",
        component_name=component,
        method_name="Readings",
        method_parameters=(("k", AnyValue(VALUE_URL, bytes(Value(string_value="v")))),),
        tags=tags,
        mime_type="",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def tab_row(i: int, m: StoredMetadata, data: dict[str, object] | None = None) -> TabularRow:
    return TabularRow(
        id=str(i),
        metadata=m,
        time_requested_ns=T0_NS + i * 1_000_000,
        time_received_ns=T0_NS + i * 1_000_000 + 5_000,
        time_synced_ns=T0_NS + 10**9,
        data=data if data is not None else {"i": i},  # type: ignore[dict-item]
    )


# -- filters -----------------------------------------------------------------------


def full_filter() -> data_pb.Filter:
    return data_pb.Filter(
        component_name="cn",
        component_type="ct",
        method="m",
        robot_name="rn",
        robot_id="rid",
        part_name="pn",
        part_id="pid",
        location_ids=["l1", "l2", "l1"],
        organization_ids=["o1"],
        mime_type=["image/png"],
        interval=data_pb.CaptureInterval(start=T0, end=T0 + timedelta(seconds=1)),
        tags_filter=data_pb.TagsFilter(type=data_pb.TagsFilterType.MATCH_BY_OR, tags=["t1"]),
        bbox_labels=["cat"],
        dataset_id="ds",
    )


def test_every_filter_field_maps() -> None:
    got = conv.to_filter(full_filter())
    assert got == Filter(
        component_name="cn",
        component_type="ct",
        method="m",
        robot_name="rn",
        robot_id="rid",
        part_name="pn",
        part_id="pid",
        location_ids=("l1", "l2"),  # de-duplicated, order kept
        organization_ids=("o1",),
        mime_types=("image/png",),
        start_ns=T0_NS,
        end_ns=T0_NS + 1_000_000_000,
        tags_mode=TagsMode.MATCH_BY_OR,
        tags=("t1",),
        bbox_labels=("cat",),
        dataset_id="ds",
    )
    defaults = Filter()
    unmapped = [
        f.name
        for f in dataclasses.fields(Filter)
        if getattr(got, f.name) == getattr(defaults, f.name)
    ]
    assert unmapped == []


def test_missing_filter_matches_everything() -> None:
    assert conv.to_filter(None) == Filter()
    assert conv.to_filter(data_pb.Filter()) == Filter()
    assert conv.delete_filter(None) == Filter()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (data_pb.TagsFilterType.UNSPECIFIED, TagsMode.UNSPECIFIED),
        (data_pb.TagsFilterType.MATCH_BY_OR, TagsMode.MATCH_BY_OR),
        (data_pb.TagsFilterType.TAGGED, TagsMode.TAGGED),
        (data_pb.TagsFilterType.UNTAGGED, TagsMode.UNTAGGED),
    ],
)
def test_tags_filter_types_map(mode: data_pb.TagsFilterType, expected: TagsMode) -> None:
    got = conv.to_filter(data_pb.Filter(tags_filter=data_pb.TagsFilter(type=mode)))
    assert got.tags_mode is expected


def test_unknown_tags_filter_type_is_refused() -> None:
    msg = data_pb.Filter(tags_filter=data_pb.TagsFilter(type=data_pb.TagsFilterType(9)))
    with pytest.raises(InvalidArgument, match=r"filter\.tags_filter\.type"):
        conv.to_filter(msg)


def test_open_interval_ends() -> None:
    start_only = conv.to_filter(data_pb.Filter(interval=data_pb.CaptureInterval(start=T0)))
    assert (start_only.start_ns, start_only.end_ns) == (T0_NS, 0)
    end_only = conv.to_filter(data_pb.Filter(interval=data_pb.CaptureInterval(end=T0)))
    assert (end_only.start_ns, end_only.end_ns) == (0, T0_NS)


def test_backwards_interval_is_refused() -> None:
    backwards = data_pb.CaptureInterval(start=T0, end=T0 - timedelta(microseconds=1))
    with pytest.raises(InvalidArgument, match=r"filter\.interval"):
        conv.to_filter(data_pb.Filter(interval=backwards))


def test_oversized_values_are_refused_with_their_field() -> None:
    with pytest.raises(InvalidArgument, match=r"filter\.component_name"):
        conv.to_filter(data_pb.Filter(component_name="x" * (conv.MAX_FIELD_CHARS + 1)))
    with pytest.raises(InvalidArgument, match=r"filter\.tags_filter\.tags\[1\]"):
        conv.to_filter(data_pb.Filter(tags_filter=data_pb.TagsFilter(tags=["ok", "y" * 5000])))
    with pytest.raises(InvalidArgument, match=r"filter\.location_ids"):
        conv.to_filter(data_pb.Filter(location_ids=["l"] * (conv.MAX_LIST_ITEMS + 1)))


def test_every_delete_filter_field_maps() -> None:
    msg = data_pb.DeleteTabularFilter(
        location_ids=["l1"],
        robot_id="rid",
        part_id="pid",
        component_type="ct",
        component_name="cn",
        method="m",
        tags_filter=data_pb.TagsFilter(type=data_pb.TagsFilterType.UNTAGGED),
    )
    assert conv.delete_filter(msg) == Filter(
        location_ids=("l1",),
        robot_id="rid",
        part_id="pid",
        component_type="ct",
        component_name="cn",
        method="m",
        tags_mode=TagsMode.UNTAGGED,
    )


# -- data requests -----------------------------------------------------------------


def test_data_request_maps_filter_and_page() -> None:
    msg = data_pb.DataRequest(
        filter=data_pb.Filter(part_id="p"),
        limit=7,
        last="cursor",
        sort_order=data_pb.Order.ASCENDING,
    )
    assert conv.data_request(msg) == (
        Filter(part_id="p"),
        PageRequest(limit=7, last="cursor", order=SortOrder.ASCENDING),
    )


def test_data_request_defaults() -> None:
    assert conv.data_request(None) == (Filter(), PageRequest())
    _flt, page = conv.data_request(data_pb.DataRequest())
    assert page.order is SortOrder.UNSPECIFIED
    assert (page.limit, page.last) == (0, "")


def test_huge_limit_is_passed_on_for_the_store_to_cap() -> None:
    _flt, page = conv.data_request(data_pb.DataRequest(limit=2**64 - 1))
    assert page.limit == 2**64 - 1


def test_unknown_sort_order_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"data_request\.sort_order"):
        conv.data_request(data_pb.DataRequest(sort_order=data_pb.Order(5)))


def test_bad_filter_inside_data_request_names_its_path() -> None:
    msg = data_pb.DataRequest(filter=data_pb.Filter(part_id="p" * 2000))
    with pytest.raises(InvalidArgument, match=r"data_request\.filter\.part_id"):
        conv.data_request(msg)


# -- timestamps --------------------------------------------------------------------


def test_zero_means_unset() -> None:
    assert conv.ns_to_datetime(0) is None


def test_nanoseconds_floor_to_microseconds() -> None:
    assert conv.ns_to_datetime(T0_NS + 999) == T0
    assert conv.ns_to_datetime(1) == datetime(1970, 1, 1, tzinfo=UTC)
    assert conv.ns_to_datetime(-1) == datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)


@given(st.integers(min_value=-(10**18), max_value=4 * 10**18).filter(bool))
def test_timestamps_survive_the_wire(ns: int) -> None:
    msg = data_pb.TabularData(time_requested=conv.ns_to_datetime(ns))
    parsed = data_pb.TabularData.parse(bytes(msg))
    assert parsed.time_requested is not None
    assert parsed.time_requested.tzinfo is not None
    assert timestamp_ns(parsed.time_requested) == ns // 1000 * 1000


# -- values ------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _as_doubles(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_as_doubles(v) for v in value]
    assert isinstance(value, dict)
    return {k: _as_doubles(v) for k, v in value.items()}


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_struct_round_trips_nested_values(data: dict[str, object]) -> None:
    parsed = Struct.parse(bytes(conv.to_struct(data))).to_dict()  # type: ignore[arg-type]
    assert parsed == _as_doubles(data)


def test_json_size_is_compact_utf8() -> None:
    assert conv.json_size({"a": [1, 2], "é": None}) == len('{"a":[1,2],"é":null}'.encode())


def _any(url_name: str, raw: bytes) -> AnyValue:
    return AnyValue(f"type.googleapis.com/google.protobuf.{url_name}", raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (_any("Value", bytes(Value(number_value=2.5))), 2.5),
        (_any("Value", bytes(Value.from_dict({"a": [1, None]}))), {"a": [1.0, None]}),
        (_any("Struct", bytes(Struct.from_dict({"x": True}))), {"x": True}),
        (_any("ListValue", bytes(ListValue.from_dict(["s"]))), ["s"]),
        (_any("StringValue", b"\x0a\x02hi"), "hi"),
        (_any("StringValue", b""), ""),
        (_any("BoolValue", b"\x08\x01"), True),
        (_any("Int64Value", b"\x08" + b"\xff" * 9 + b"\x01"), -1),
        (_any("UInt32Value", b"\x08\x96\x01"), 150),
        (_any("DoubleValue", b"\x09" + struct.pack("<d", 1.5)), 1.5),
        (_any("FloatValue", b"\x0d" + struct.pack("<f", 0.5)), 0.5),
        (_any("BytesValue", b"\x0a\x01\xff"), base64.b64encode(b"\xff").decode()),
    ],
)
def test_method_parameters_unpack_viam_value_types(value: AnyValue, expected: object) -> None:
    assert conv.any_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        AnyValue("type.googleapis.com/my.Custom", b"\x01\x02"),
        _any("Value", b"\xff\xff\xff"),  # not a Value
        _any("StringValue", b"\x0a\x05hi"),  # truncated
        AnyValue("", b""),
    ],
)
def test_other_parameters_render_like_protojson_any(value: AnyValue) -> None:
    assert conv.any_json(value) == {
        "@type": value.type_url,
        "value": base64.b64encode(value.value).decode(),
    }


# -- responses ---------------------------------------------------------------------


def test_capture_metadata_rebuilds_any_parameters() -> None:
    m = meta(mime_type="image/png")
    out = conv.capture_metadata(m)
    assert out.method_parameters["k"].type_url == VALUE_URL
    assert Value.parse(out.method_parameters["k"].value).to_dict() == "v"
    assert (out.organization_id, out.location_id, out.robot_name, out.robot_id) == (
        "org",
        "loc",
        "robot",
        "rid",
    )
    assert (out.part_name, out.part_id, out.component_type, out.component_name) == (
        "pname",
        "pid",
        "rdk:component:sensor",
        "s1",
    )
    assert (out.method_name, out.tags, out.mime_type) == ("Readings", ["a"], "image/png")


def test_tabular_page_shares_metadata_by_index() -> None:
    a, b = meta("s1"), meta("s2", tags=("b",))
    rows = [tab_row(0, a), tab_row(1, b), tab_row(2, meta("s1")), tab_row(3, b)]
    page = conv.tabular_page(rows, "next")
    assert [m.component_name for m in page.metadata] == ["s1", "s2"]
    assert [d.metadata_index for d in page.data] == [0, 1, 0, 1]
    assert page.count == 4
    assert page.last == "next"
    assert page.total_size_bytes == sum(
        len(json.dumps({"i": i}).replace(" ", "")) for i in range(4)
    )
    first = page.data[0]
    assert first.time_requested == T0
    assert first.time_received == T0 + timedelta(microseconds=5)
    assert first.data is not None
    assert first.data.to_dict() == {"i": 0.0}


def test_empty_tabular_page() -> None:
    page = conv.tabular_page([], "")
    assert (page.metadata, page.data, page.count, page.total_size_bytes) == ([], [], 0, 0)


def _binary_row(annotations: dict[str, object] | None) -> BinaryRow:
    return BinaryRow(
        binary_data_id="org/loc/abc",
        metadata=meta("cam", mime_type="image/jpeg"),
        blob=BlobRef(sha256="00" * 32, size=1234),
        time_requested_ns=T0_NS,
        time_received_ns=T0_NS + 1000,
        time_synced_ns=T0_NS + 2000,
        file_name="img.jpg",
        file_ext=".jpg",
        dataset_ids=("ds1",),
        annotations=annotations,  # type: ignore[arg-type]
        file_id="abc",
    )


def test_binary_data_carries_metadata_and_annotations() -> None:
    ann = data_pb.Annotations(
        bboxes=[
            data_pb.BoundingBox(
                id="b",
                label="cat",
                x_min_normalized=0.1,
                y_min_normalized=0.2,
                x_max_normalized=0.3,
                y_max_normalized=0.4,
                confidence=0.9,
            )
        ],
        classifications=[data_pb.Classification(label="dog")],
    )
    out = conv.binary_data(_binary_row(ann.to_dict()), b"bytes")
    assert out.binary == b"bytes"
    md = out.metadata
    assert md is not None
    assert (md.binary_data_id, md.file_name, md.file_ext, md.file_size_bytes) == (
        "org/loc/abc",
        "img.jpg",
        ".jpg",
        1234,
    )
    assert md.dataset_ids == ["ds1"]
    assert md.time_requested == T0
    assert md.time_received == T0 + timedelta(microseconds=1)
    assert md.capture_metadata is not None
    assert md.capture_metadata.mime_type == "image/jpeg"
    assert md.annotations is not None
    assert bytes(md.annotations) == bytes(ann)
    assert md.uri == ""


def test_binary_data_without_annotations_or_bytes() -> None:
    out = conv.binary_data(_binary_row(None))
    assert out.binary == b""
    assert out.metadata is not None
    assert out.metadata.annotations is None


def test_export_point_names_its_source() -> None:
    point = conv.export_point(tab_row(3, meta(), {"x": [1, "y"]}))
    assert (point.part_id, point.resource_name, point.resource_subtype, point.method_name) == (
        "pid",
        "s1",
        "rdk:component:sensor",
        "Readings",
    )
    assert (point.organization_id, point.location_id, point.robot_name, point.robot_id) == (
        "org",
        "loc",
        "robot",
        "rid",
    )
    assert point.part_name == "pname"
    assert point.time_captured == T0 + timedelta(milliseconds=3)
    assert point.method_parameters is not None
    assert point.method_parameters.to_dict() == {"k": "v"}
    assert point.payload is not None
    assert point.payload.to_dict() == {"x": [1.0, "y"]}
    assert point.tags == ["a"]


def test_latest_reading() -> None:
    empty = conv.latest_reading(None)
    assert empty.payload is None
    assert empty.time_captured is None
    got = conv.latest_reading(tab_row(0, meta()))
    assert got.time_captured == T0
    assert got.time_synced == T0 + timedelta(seconds=1)
    assert got.payload is not None
    assert got.payload.to_dict() == {"i": 0.0}

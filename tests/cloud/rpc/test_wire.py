"""``cloud.rpc._wire``: decoded requests whose fields came with the wrong wire type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from cloud.errors import InvalidArgument
from cloud.rpc._wire import check_wire_types
from protos.gen.google.protobuf import Struct
from protos.gen.viam.app.data import v1 as data_pb
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    import betterproto2


@pytest.mark.parametrize(
    ("cls", "raw", "field"),
    [
        (data_pb.TagsByFilterRequest, b"\x08\x05", "filter"),  # message as varint
        (data_pb.TabularDataByFilterRequest, b"\x0a\x02\x08\x05", "data_request.filter"),
        (data_pb.BinaryDataByIDsRequest, b"\x22\x02ab\x20\x05", r"binary_data_ids\[1\]"),
        (data_pb.TabularDataBySqlRequest, b"\x10\x05", "sql_query"),  # string as varint
        (data_pb.ExportTabularDataRequest, b"\x2a\x02\x08\x05", "interval.start"),  # Timestamp
        (data_pb.ExportTabularDataRequest, b"\x32\x04\x0a\x02\x08\x01", "additional_parameters"),
        (data_pb.DeleteTabularDataRequest, b"\x12\x01x", "delete_older_than_days"),  # int as len
        (data_pb.TabularDataByMqlRequest, b"\x1a\x01x\x18\x05", r"mql_binary\[1\]"),  # bytes
        (data_pb.BinaryDataByFilterRequest, b"\x10\x05\x1a\x01x", "count_only"),  # bool as len
        (datasync.SensorData, b"\x10\x05", "struct"),  # other services' messages too
    ],
)
def test_wrong_wire_types_are_refused_naming_the_field(
    cls: type[betterproto2.Message], raw: bytes, field: str
) -> None:
    msg = cls.parse(raw)
    with pytest.raises(InvalidArgument, match=rf"^{field}.*: malformed"):
        check_wire_types(msg)


def test_the_path_starts_where_told() -> None:
    with pytest.raises(InvalidArgument, match=r"^req\.filter: malformed"):
        check_wire_types(data_pb.TagsByFilterRequest.parse(b"\x08\x05"), "req")


@pytest.mark.parametrize(
    "msg",
    [
        data_pb.TagsByFilterRequest(),
        data_pb.TabularDataByFilterRequest(
            data_request=data_pb.DataRequest(
                filter=data_pb.Filter(
                    location_ids=["a", "b"],
                    interval=data_pb.CaptureInterval(start=datetime(2024, 1, 1, tzinfo=UTC)),
                    tags_filter=data_pb.TagsFilter(type=data_pb.TagsFilterType.TAGGED),
                ),
                limit=5,
                sort_order=data_pb.Order.ASCENDING,
            ),
            count_only=True,
        ),
        data_pb.ExportTabularDataRequest(
            part_id="p", additional_parameters=Struct.from_dict({"a": [1, {"b": None}], "c": True})
        ),
        data_pb.TabularDataByMqlRequest(organization_id="o", mql_binary=[b"\x05\x00\x00\x00\x00"]),
        data_pb.CaptureMetadata(method_parameters={}),
    ],
)
def test_well_formed_messages_pass(msg: betterproto2.Message) -> None:
    check_wire_types(type(msg).parse(bytes(msg)))
    check_wire_types(msg)


def test_unknown_enum_values_are_left_to_the_handler() -> None:
    msg = data_pb.DataRequest.parse(b"\x20\x80\x01")  # sort_order = 128
    check_wire_types(msg)
    assert int(msg.sort_order) == 128

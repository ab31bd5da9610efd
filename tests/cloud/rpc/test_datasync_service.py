"""Viam's DataSyncService over loopback: each upload RPC stores exactly what it carried.

Guarantees: FileUpload and StreamingDataCaptureUpload accept a payload in any
number of messages (the bytes come back identical); a stream without its
metadata first, or over the size limit, is INVALID_ARGUMENT and stores nothing;
responses fill both ids; a part claimed by one organization is closed to others.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from protos.gen.viam.app.data import v1 as data_pb
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cloud.rpc.conftest import at, authed_metadata, run, start_server

if TYPE_CHECKING:
    from pathlib import Path

PART = "part-ds"


async def binary_by_id(srv, md, binary_id: str) -> data_pb.BinaryData:
    reply = await data_pb.DataServiceStub(srv.channel()).binary_data_by_i_ds(
        data_pb.BinaryDataByIDsRequest(binary_data_ids=[binary_id], include_binary=True),
        metadata=md,
    )
    [item] = reply.data
    return item


async def count_binary(srv, md) -> int:
    reply = await data_pb.DataServiceStub(srv.channel()).binary_data_by_filter(
        data_pb.BinaryDataByFilterRequest(data_request=data_pb.DataRequest(), count_only=True),
        metadata=md,
    )
    return reply.count


def file_metadata(**kw: object) -> datasync.UploadMetadata:
    base: dict[str, object] = {
        "part_id": PART,
        "component_type": "rdk:component:camera",
        "component_name": "cam",
        "type": datasync.DataType.FILE,
        "file_name": "scan.png",
        "file_extension": ".png",
        "tags": ["lab"],
    }
    base.update(kw)
    return datasync.UploadMetadata(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("pieces", [1, 7])
def test_file_upload_in_any_number_of_messages_stores_the_bytes_once(tmp_path: Path, pieces: int):
    payload = os.urandom(300_000)

    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, "org-a", "loc-a")
            step = -(-len(payload) // pieces)
            messages = [datasync.FileUploadRequest(metadata=file_metadata())] + [
                datasync.FileUploadRequest(
                    file_contents=datasync.FileData(data=payload[i : i + step])
                )
                for i in range(0, len(payload), step)
            ]
            stub = datasync.DataSyncServiceStub(srv.channel())
            reply = await stub.file_upload(messages, metadata=md)
            assert reply.binary_data_id
            assert reply.file_id
            item = await binary_by_id(srv, md, reply.binary_data_id)
            assert item.binary == payload
            assert item.metadata is not None
            assert item.metadata.file_name == "scan.png"
            assert item.metadata.capture_metadata is not None
            assert item.metadata.capture_metadata.mime_type == "image/png"  # from the extension
            assert await count_binary(srv, md) == 1

    run(scenario)


def test_streaming_upload_stores_one_binary_reading_with_its_times(tmp_path: Path):
    payload = os.urandom(200_000)

    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, "org-a", "loc-a")
            head = datasync.DataCaptureUploadMetadata(
                upload_metadata=file_metadata(
                    type=datasync.DataType.BINARY_SENSOR, file_extension=".mp4", mime_type=""
                ),
                sensor_metadata=datasync.SensorMetadata(time_requested=at(1), time_received=at(2)),
            )
            messages = [datasync.StreamingDataCaptureUploadRequest(metadata=head)] + [
                datasync.StreamingDataCaptureUploadRequest(data=payload[i : i + 65536])
                for i in range(0, len(payload), 65536)
            ]
            stub = datasync.DataSyncServiceStub(srv.channel())
            reply = await stub.streaming_data_capture_upload(messages, metadata=md)
            item = await binary_by_id(srv, md, reply.binary_data_id)
            assert item.binary == payload
            assert item.metadata is not None
            assert (item.metadata.time_requested, item.metadata.time_received) == (at(1), at(2))
            assert item.metadata.capture_metadata is not None
            assert item.metadata.capture_metadata.mime_type == "video/mp4"

    run(scenario)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            [datasync.FileUploadRequest(file_contents=datasync.FileData(data=b"x"))],
            "FileUpload: the first message must be metadata",
        ),
        ([], "FileUpload: the stream carried no metadata"),
        (
            [
                datasync.FileUploadRequest(metadata=file_metadata()),
                datasync.FileUploadRequest(metadata=file_metadata()),
            ],
            "FileUpload: message 1 must be file_contents, got metadata",
        ),
        (
            [datasync.FileUploadRequest(metadata=file_metadata(part_id=""))],
            "FileUpload: metadata.part_id is required",
        ),
        (
            [
                datasync.FileUploadRequest(metadata=file_metadata()),
                datasync.FileUploadRequest(file_contents=datasync.FileData(data=b"y" * 600)),
                datasync.FileUploadRequest(file_contents=datasync.FileData(data=b"y" * 600)),
            ],
            "FileUpload: payload exceeds the server's limit of 1000 bytes",
        ),
    ],
)
def test_malformed_file_uploads_are_invalid_and_store_nothing(tmp_path, messages, message):
    async def scenario() -> None:
        async with start_server(tmp_path, max_stream_upload_bytes=1000) as srv:
            md = await authed_metadata(srv, "org-a", "loc-a")
            stub = datasync.DataSyncServiceStub(srv.channel())
            with pytest.raises(GRPCError) as info:
                await stub.file_upload(messages, metadata=md)
            assert info.value.status == Status.INVALID_ARGUMENT
            assert info.value.message == message
            assert await count_binary(srv, md) == 0
            assert not list((tmp_path / "cloud" / "spool").iterdir())

    run(scenario)


@pytest.mark.parametrize(
    ("md", "contents", "message"),
    [
        (None, [], "DataCaptureUpload: metadata is required"),
        (
            datasync.UploadMetadata(part_id=PART, type=datasync.DataType.TABULAR_SENSOR),
            [],
            "DataCaptureUpload: sensor_contents is empty",
        ),
        (
            datasync.UploadMetadata(part_id=PART, type=datasync.DataType.TABULAR_SENSOR),
            [datasync.SensorData(binary=b"x")],
            "DataCaptureUpload.sensor_contents[0]: a tabular upload needs a struct, "
            "found binary data",
        ),
        (
            datasync.UploadMetadata(part_id=PART, type=datasync.DataType.BINARY_SENSOR),
            [datasync.SensorData(binary=b"x"), datasync.SensorData(binary=b"y")],
            "DataCaptureUpload: a binary upload carries exactly one sensor_contents item, got 2",
        ),
        (
            datasync.UploadMetadata(part_id=PART, type=datasync.DataType.FILE),
            [datasync.SensorData(binary=b"x")],
            "DataCaptureUpload: metadata.type must be TABULAR_SENSOR or BINARY_SENSOR, got FILE",
        ),
    ],
)
def test_inconsistent_data_capture_uploads_name_the_problem(tmp_path, md, contents, message):
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            auth = await authed_metadata(srv, "org-a", "loc-a")
            stub = datasync.DataSyncServiceStub(srv.channel())
            with pytest.raises(GRPCError) as info:
                await stub.data_capture_upload(
                    datasync.DataCaptureUploadRequest(metadata=md, sensor_contents=contents),
                    metadata=auth,
                )
            assert (info.value.status, info.value.message) == (Status.INVALID_ARGUMENT, message)

    run(scenario)


def test_a_part_claimed_by_one_organization_is_closed_to_another(tmp_path):
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            org_a = await authed_metadata(srv, "org-a", "loc-a")
            org_b = await authed_metadata(srv, "org-b", "loc-b")
            stub = datasync.DataSyncServiceStub(srv.channel())
            ok = [datasync.FileUploadRequest(metadata=file_metadata())]
            await stub.file_upload(ok, metadata=org_a)
            with pytest.raises(GRPCError) as info:
                await stub.file_upload(ok, metadata=org_b)
            assert info.value.status == Status.PERMISSION_DENIED
            assert await count_binary(srv, org_b) == 0

    run(scenario)


def test_calls_without_a_valid_token_are_unauthenticated(tmp_path):
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            stub = datasync.DataSyncServiceStub(srv.channel())
            request = datasync.DataCaptureUploadRequest()
            for md in (None, {"authorization": "Bearer nope"}, {"authorization": "Basic x"}):
                with pytest.raises(GRPCError) as info:
                    await stub.data_capture_upload(request, metadata=md)
                assert info.value.status == Status.UNAUTHENTICATED

    run(scenario)

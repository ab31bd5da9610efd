"""Fuzzing the real server over loopback: bad input is refused cleanly, never half-stored.

Guarantees: whatever bytes or messages a client sends, the server answers with
a client-error status (never INTERNAL or UNKNOWN), stays up, and a refused
request stores nothing — an accepted one stores exactly what it carried.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.aio_loop import new_asyncio_loop
from cloud.auth import create_api_key
from cloud.model import Filter, Principal
from cloud.server import CloudServer, ServerOptions
from protos.gen.google.protobuf import Struct
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cloud import wire
from tests.cloud.wire import Raw

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator
    from pathlib import Path

CLIENT_ERRORS = {
    Status.INVALID_ARGUMENT,
    Status.NOT_FOUND,
    Status.PERMISSION_DENIED,
    Status.FAILED_PRECONDITION,
    Status.RESOURCE_EXHAUSTED,
    Status.UNAUTHENTICATED,
}
UNARY = [
    "/viam.app.datasync.v1.DataSyncService/DataCaptureUpload",
    "/ferry.sync.v1.ResumableUploadService/OpenUpload",
    "/ferry.sync.v1.ResumableUploadService/WriteChunk",
    "/ferry.sync.v1.ResumableUploadService/FinishUpload",
    "/ferry.sync.v1.ResumableUploadService/UploadFiles",
    "/viam.app.data.v1.DataService/TabularDataByFilter",
    "/viam.app.data.v1.DataService/TabularDataBySQL",
    "/viam.app.data.v1.DataService/TabularDataByMQL",
    "/viam.app.data.v1.DataService/BinaryDataByFilter",
    "/viam.app.data.v1.DataService/DeleteTabularData",
    "/proto.rpc.v1.AuthService/Authenticate",
]
STREAMS = [
    "/viam.app.datasync.v1.DataSyncService/FileUpload",
    "/viam.app.datasync.v1.DataSyncService/StreamingDataCaptureUpload",
]
ROBOT = Principal("fuzz", "org-f", "loc-f")


class Running:
    """A CloudServer on its own asyncio loop in a thread, and a client channel to it."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = new_asyncio_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # grpclib binds the server to the loop it is created on: create it there.
        self.server: CloudServer = self.run(self._create(data_dir))
        _, self.port = self.run(self.server.start())
        key_id, key = create_api_key(
            self.server.store,
            org_id=ROBOT.org_id,
            location_id=ROBOT.location_id,
            wall_ns=time.time_ns,
        )
        self.channel: Channel = self.run(self._channel())
        self.md: dict[str, str] = self.run(wire.bearer(self.channel, key_id, key))

    async def _create(self, data_dir: Path) -> CloudServer:
        return CloudServer(ServerOptions(port=0, data_dir=data_dir, workers=2))

    async def _channel(self) -> Channel:
        return Channel("127.0.0.1", self.port)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stored(self) -> tuple[int, int]:
        store = self.server.store
        return store.count_tabular(ROBOT, Filter()), store.count_binary(ROBOT, Filter())

    def close(self) -> None:
        self.channel.close()
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(tmp_path_factory.mktemp("fuzz") / "cloud")
    yield running
    running.close()


async def _raw_call(channel: Channel, path: str, messages: list[bytes], md: dict[str, str]) -> None:
    cardinality = Cardinality.STREAM_UNARY if path in STREAMS else Cardinality.UNARY_UNARY
    async with channel.request(path, cardinality, Raw, Raw, metadata=md) as stream:
        if not messages:
            await stream.send_request(end=True)  # a stream with no messages at all
        for i, message in enumerate(messages):
            await stream.send_message(Raw(message), end=i == len(messages) - 1)
        await stream.recv_message()


def _status_of(server: Running, coro: Coroutine[Any, Any, Any]) -> Status:
    try:
        server.run(coro)
    except GRPCError as err:
        status, message = err.status, err.message
    else:
        return Status.OK
    assert status in CLIENT_ERRORS, f"{status.name}: {message}"
    return status


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    call=st.one_of(
        st.tuples(
            st.sampled_from(UNARY), st.lists(st.binary(max_size=300), min_size=1, max_size=1)
        ),
        st.tuples(st.sampled_from(STREAMS), st.lists(st.binary(max_size=300), max_size=3)),
    )
)
def test_raw_bytes_never_cause_a_server_error_or_partial_data(server, call):
    path, messages = call
    before = server.stored()
    status = _status_of(server, _raw_call(server.channel, path, messages, server.md))
    if status != Status.OK:
        assert server.stored() == before


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def sensor_data(draw: st.DrawFn) -> datasync.SensorData:
    kind = draw(st.sampled_from(["struct", "binary", "none"]))
    meta = datasync.SensorMetadata() if draw(st.booleans()) else None
    if kind == "struct":
        return datasync.SensorData(
            metadata=meta,
            struct=Struct.from_dict(
                draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
            ),
        )
    if kind == "binary":
        return datasync.SensorData(metadata=meta, binary=draw(st.binary(max_size=64)))
    return datasync.SensorData(metadata=meta)


upload_metadata = st.builds(
    datasync.UploadMetadata,
    part_id=st.sampled_from(["", "part-f", "x" * 2000]),
    component_type=st.sampled_from(["rdk:component:sensor", "", "c" * 1100]),
    component_name=st.text(max_size=10),
    method_name=st.sampled_from(["Readings", "ReadImage", ""]),
    type=st.sampled_from(list(datasync.DataType)),
    tags=st.lists(st.text(max_size=6), max_size=3),
    file_extension=st.sampled_from(["", ".jpeg", "png"]),
)


@FUZZ
@given(
    metadata=st.none() | upload_metadata,
    contents=st.lists(sensor_data(), max_size=4),
)
def test_data_capture_upload_stores_all_of_a_valid_request_or_nothing(server, metadata, contents):
    before = server.stored()
    request = datasync.DataCaptureUploadRequest(metadata=metadata, sensor_contents=contents)
    status = _status_of(
        server,
        datasync.DataSyncServiceStub(server.channel).data_capture_upload(
            request, metadata=server.md
        ),
    )
    after = server.stored()
    if status != Status.OK:
        assert after == before
    elif metadata is not None and metadata.type == datasync.DataType.TABULAR_SENSOR:
        assert after == (before[0] + len(contents), before[1])
    else:
        assert after == (before[0], before[1] + 1)


@settings(FUZZ, max_examples=30)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["write", "finish", "open"]),
            st.integers(0, 400),
            st.binary(max_size=120),
            st.booleans(),
        ),
        max_size=12,
    ),
    size=st.integers(0, 300),
)
def test_random_resumable_calls_keep_the_committed_offset_consistent(server, ops, size):
    """The committed offset only grows, by accepted chunks, and never past the size."""
    data = bytes(range(256)) * 2
    data = data[:size]
    path = f"fuzz/{time.monotonic_ns()}.bin"
    up = server.run(
        wire.open_upload(
            server.channel,
            server.md,
            data,
            "part-f",
            path,
            wire.resumable_pb.UploadKind.ARBITRARY_FILE,
        )
    )
    committed = 0
    for op, offset, chunk, good_crc in ops:
        if op == "write":
            request = wire.resumable_pb.WriteChunkRequest(
                upload_id=up.upload_id,
                offset=offset,
                data=chunk,
                crc32=wire.zlib.crc32(chunk) if good_crc else 7,
            )
            replies: list[wire.resumable_pb.WriteChunkResponse] = []

            async def call(
                request: wire.resumable_pb.WriteChunkRequest = request,
                replies: list[wire.resumable_pb.WriteChunkResponse] = replies,
            ) -> None:
                stub = wire.resumable_pb.ResumableUploadServiceStub(server.channel)
                replies.append(await stub.write_chunk(request, metadata=server.md))

            if _status_of(server, call()) != Status.OK:
                continue
            [reply] = replies
            assert reply.committed_offset >= committed
            assert reply.committed_offset <= size
            if reply.accepted:
                assert offset == committed
                assert reply.committed_offset == committed + len(chunk)
            else:
                assert reply.committed_offset == committed
            committed = reply.committed_offset
        elif op == "open":
            again = server.run(
                wire.open_upload(
                    server.channel,
                    server.md,
                    data,
                    "part-f",
                    path,
                    wire.resumable_pb.UploadKind.ARBITRARY_FILE,
                )
            )
            assert again.upload_id == up.upload_id
            assert again.committed_offset == committed
        else:
            finish = wire.resumable_pb.FinishUploadRequest(
                upload_id=up.upload_id, sha256=wire.hashlib.sha256(data).digest()
            )
            _status_of(
                server,
                wire.resumable_pb.ResumableUploadServiceStub(server.channel).finish_upload(
                    finish, metadata=server.md
                ),
            )


# Fields 1-6 each sent with a wire type their schema does not have: varints where
# messages/strings are declared, and length-delimited where numbers are.
WRONG_WIRE_TYPES = [
    b"\x08\x01\x10\x01\x18\x01\x20\x01\x28\x01\x30\x01",
    b"\x0a\x01x\x12\x01x\x1a\x01x\x22\x01x\x2a\x01x\x32\x01x",
]


@pytest.mark.parametrize("path", UNARY + STREAMS)
@pytest.mark.parametrize("body", WRONG_WIRE_TYPES)
def test_fields_with_the_wrong_wire_type_are_a_client_error_in_every_service(server, path, body):
    before = server.stored()
    _status_of(server, _raw_call(server.channel, path, [body], server.md))
    assert server.stored() == before

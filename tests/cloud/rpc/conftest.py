"""A real ``CloudServer`` on loopback, authenticated callers and upload helpers.

The server is asyncio (grpclib) while pytest runs in trio mode, so RPC tests are
plain sync functions that call ``asyncio.run``; ``run`` does that. Import the
helpers with ``from tests.cloud.rpc.conftest import start_server, ...``::

    def test_something(tmp_path: Path) -> None:
        async def scenario() -> None:
            async with start_server(tmp_path) as srv:
                md = await authed_metadata(srv, "org-a", "loc-a")
                stub = DataServiceStub(srv.channel())
                await stub.tags_by_filter(TagsByFilterRequest(), metadata=md)

        run(scenario)
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from grpclib.client import Channel

from cloud.aio_loop import run_asyncio
from cloud.auth import create_api_key
from cloud.server import CloudServer, ServerOptions
from protos.gen.google.protobuf import Struct
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cloud.wire import bearer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
    from pathlib import Path

    from actors.codec import JsonObject
    from protos.gen.google.protobuf import Any as PbAny

T = TypeVar("T")

SENSOR_API = "rdk:component:sensor"
CAMERA_API = "rdk:component:camera"
# 2024-01-01T00:00:00Z: readings the helpers upload are captured from here on.
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Runs an async scenario to completion on a fresh asyncio loop."""

    async def main() -> T:
        return await scenario()

    return run_asyncio(main())


@dataclass
class RunningServer:
    """A started server and the channels opened to it (closed when it stops)."""

    server: CloudServer
    host: str
    port: int
    _channels: list[Channel] = field(default_factory=list)

    def channel(self) -> Channel:
        """A new plaintext channel to the server, closed with it."""
        channel = Channel(self.host, self.port)
        self._channels.append(channel)
        return channel


@contextlib.asynccontextmanager
async def start_server(
    tmp_path: Path,
    *,
    wall_ns: Callable[[], int] = time.time_ns,
    allow_internal_errors: bool = False,
    **options: Any,
) -> AsyncIterator[RunningServer]:
    """Starts a ``CloudServer`` on 127.0.0.1 (a free port) with its data in ``tmp_path``.

    Args:
        tmp_path: the test's directory; the data dir is ``tmp_path / "cloud"``.
        wall_ns: the server's wall clock.
        allow_internal_errors: unless set, a call that ended in INTERNAL (an
            unexpected exception in a handler) fails the test when the block exits.
        **options: other ``ServerOptions`` fields (``workers``, ``limits``…).
    """
    opts = ServerOptions(host="127.0.0.1", port=0, data_dir=tmp_path / "cloud", **options)
    server = CloudServer(opts, wall_ns=wall_ns)
    host, port = await server.start()
    running = RunningServer(server, host, port)
    try:
        yield running
        if not allow_internal_errors:
            assert not server.edge.internal_errors, (
                f"calls ended in INTERNAL: {dict(server.edge.internal_errors)}"
            )
    finally:
        for channel in running._channels:
            channel.close()
        await server.stop()


async def authed_metadata(
    srv: RunningServer, org: str, loc: str, part: str | None = None
) -> dict[str, str]:
    """Creates an API key for ``org``/``loc`` (and ``part``), authenticates through
    ``AuthService`` and returns the call metadata carrying the bearer token."""
    key_id, secret = create_api_key(
        srv.server.store, org_id=org, location_id=loc, part_id=part, wall_ns=time.time_ns
    )
    return await bearer(srv.channel(), key_id, secret)


def at(seconds: float) -> datetime:
    """``BASE_TIME`` plus ``seconds``."""
    return BASE_TIME + timedelta(seconds=seconds)


async def upload_tabular(
    srv: RunningServer,
    metadata: Mapping[str, str],
    *,
    part_id: str,
    readings: Sequence[tuple[datetime, JsonObject]],
    component_name: str = "sensor-1",
    component_type: str = SENSOR_API,
    method_name: str = "Readings",
    tags: Sequence[str] = (),
    method_parameters: Mapping[str, PbAny] | None = None,
) -> str:
    """Uploads readings ``(time_requested, data)`` with ``DataCaptureUpload``.

    Each reading is received 1 ms after it was requested. Returns the file id.
    """
    contents = [
        datasync.SensorData(
            metadata=datasync.SensorMetadata(
                time_requested=when, time_received=when + timedelta(milliseconds=1)
            ),
            struct=Struct.from_dict(dict(data)),
        )
        for when, data in readings
    ]
    reply = await datasync.DataSyncServiceStub(srv.channel()).data_capture_upload(
        datasync.DataCaptureUploadRequest(
            metadata=datasync.UploadMetadata(
                part_id=part_id,
                component_type=component_type,
                component_name=component_name,
                method_name=method_name,
                type=datasync.DataType.TABULAR_SENSOR,
                tags=list(tags),
                method_parameters=dict(method_parameters or {}),
            ),
            sensor_contents=contents,
        ),
        metadata=dict(metadata),
    )
    return reply.file_id


async def upload_binary(
    srv: RunningServer,
    metadata: Mapping[str, str],
    *,
    part_id: str,
    payload: bytes,
    when: datetime,
    component_name: str = "camera-1",
    component_type: str = CAMERA_API,
    method_name: str = "ReadImage",
    tags: Sequence[str] = (),
    mime_type: str = "image/jpeg",
    file_extension: str = ".jpeg",
) -> str:
    """Uploads one binary reading with ``DataCaptureUpload``; returns its binary data id."""
    reply = await datasync.DataSyncServiceStub(srv.channel()).data_capture_upload(
        datasync.DataCaptureUploadRequest(
            metadata=datasync.UploadMetadata(
                part_id=part_id,
                component_type=component_type,
                component_name=component_name,
                method_name=method_name,
                type=datasync.DataType.BINARY_SENSOR,
                tags=list(tags),
                mime_type=mime_type,
                file_extension=file_extension,
            ),
            sensor_contents=[
                datasync.SensorData(
                    metadata=datasync.SensorMetadata(
                        time_requested=when, time_received=when + timedelta(milliseconds=1)
                    ),
                    binary=payload,
                )
            ],
        ),
        metadata=dict(metadata),
    )
    return reply.binary_data_id

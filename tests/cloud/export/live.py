"""A real ``CloudServer`` on loopback, run on its own asyncio loop thread, with known data.

``ferry export`` runs ``asyncio.run`` itself, so the server cannot share the
test's thread: it gets a loop in a daemon thread, and the tests call the CLI
(or ``run.export``) from the main thread, over real gRPC. The data is uploaded
with Viam's ``DataCaptureUpload``; ``Uploaded`` keeps what was sent, shaped as
the export writes it, so tests compare outputs with it directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grpclib.client import Channel

from cloud.aio_loop import new_asyncio_loop
from cloud.auth import create_api_key
from cloud.export.client import rfc3339
from cloud.server import CloudServer, ServerOptions
from protos.gen.google.protobuf import Struct
from protos.gen.proto.rpc import v1 as rpc_pb
from protos.gen.viam.app.datasync import v1 as sync_pb

if TYPE_CHECKING:
    import random
    import ssl
    from collections.abc import Callable, Coroutine
    from pathlib import Path

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
ORG, LOC = "org-a", "loc-a"
SENSOR, MOVEMENT, CAMERA = (
    "rdk:component:sensor",
    "rdk:component:movement_sensor",
    "rdk:component:camera",
)


@dataclass
class Uploaded:
    """What went up: readings as export records, binaries by id with their bytes."""

    readings: list[dict] = field(default_factory=list)
    files: dict[str, tuple[dict, bytes]] = field(default_factory=dict)


@dataclass
class Live:
    """A started server, an API key for it and the data it holds."""

    server: CloudServer
    loop: asyncio.AbstractEventLoop
    host: str
    port: int
    key_id: str
    key: str
    data: Uploaded
    client_tls: ssl.SSLContext | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def call(self, coro: Coroutine[object, object, object]) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)


def start(
    data_dir: Path,
    client_tls: ssl.SSLContext | None = None,
    wall_ns: Callable[[], int] = time.time_ns,
    **options: object,
) -> Live:
    """Starts a server (in a new loop thread) and makes a key for ``ORG``/``LOC``.

    ``client_tls`` is what ``populate`` connects with when ``options`` enable TLS;
    ``wall_ns`` is the server's wall clock (tokens expire by it).
    """
    loop = new_asyncio_loop()
    threading.Thread(target=loop.run_forever, name="cloud-server", daemon=True).start()

    async def make() -> tuple[CloudServer, tuple[str, int]]:
        options_ = ServerOptions(port=0, data_dir=data_dir, **options)  # type: ignore[arg-type]
        server = CloudServer(options_, wall_ns=wall_ns)
        return server, await server.start()

    server, (host, port) = asyncio.run_coroutine_threadsafe(make(), loop).result(30)
    key_id, key = create_api_key(server.store, org_id=ORG, location_id=LOC, wall_ns=wall_ns)
    return Live(server, loop, host, port, key_id, key, Uploaded(), client_tls)


def stop(live: Live) -> None:
    """Stops the server gracefully, then its loop and thread."""
    live.call(live.server.stop())
    live.loop.call_soon_threadsafe(live.loop.stop)
    while live.loop.is_running():
        time.sleep(0.01)
    live.loop.close()


def _reading_time(i: int, offset_ms: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=i, milliseconds=offset_ms, microseconds=i)


def _tabular(
    part: str, ctype: str, name: str, method: str, tags: list[str], n: int, offset_ms: int
):  # type: ignore[no-untyped-def]
    """A TABULAR_SENSOR upload of ``n`` readings, and their export records."""
    contents, records = [], []
    for i in range(n):
        requested = _reading_time(i, offset_ms)
        received = requested + dt.timedelta(milliseconds=3)
        data = {"readings": {"i": i, "t": 20 + i / 8, "s": f"r{i},\"q\"", "ok": i % 2 == 0,
                             "list": [1, "x", None], "deep": {"n": None}}}  # fmt: skip
        contents.append(
            sync_pb.SensorData(
                metadata=sync_pb.SensorMetadata(time_requested=requested, time_received=received),
                struct=Struct.from_dict(data),
            )
        )
        records.append({
            "time_requested": rfc3339(requested), "time_received": rfc3339(received),
            "part_id": part, "component_type": ctype, "component_name": name,
            "method_name": method, "tags": tags, "data": data,
        })  # fmt: skip
    md = sync_pb.UploadMetadata(
        part_id=part, component_type=ctype, component_name=name, method_name=method,
        type=sync_pb.DataType.TABULAR_SENSOR, tags=tags,
    )  # fmt: skip
    return sync_pb.DataCaptureUploadRequest(metadata=md, sensor_contents=contents), records


def _binary(part: str, name: str, ext: str, tags: list[str], i: int, payload: bytes):  # type: ignore[no-untyped-def]
    requested = _reading_time(i, 750)
    md = sync_pb.UploadMetadata(
        part_id=part, component_type=CAMERA, component_name=name, method_name="ReadImage",
        type=sync_pb.DataType.BINARY_SENSOR, file_extension=ext, tags=tags,
    )  # fmt: skip
    item = sync_pb.SensorData(
        metadata=sync_pb.SensorMetadata(time_requested=requested, time_received=requested),
        binary=payload,
    )
    record = {"part_id": part, "component_name": name, "time_requested": rfc3339(requested),
              "tags": tags, "file_ext": ext}  # fmt: skip
    return sync_pb.DataCaptureUploadRequest(metadata=md, sensor_contents=[item]), record


def populate(live: Live, rng: random.Random) -> None:
    """Uploads readings of three sources and images of two cameras over two parts."""
    uploads = [
        _tabular("part-1", SENSOR, "env", "Readings", ["lab"], 130, 0),
        _tabular("part-1", MOVEMENT, "imu", "LinearAcceleration", [], 40, 500),
        _tabular("part-2", SENSOR, "env", "Readings", ["field", "lab2"], 25, 250),
    ]
    images = [("part-1", "cam", ".jpg", ["lab"]) for _ in range(6)]
    images += [("part-2", "cam2", ".png", []) for _ in range(3)]
    binaries = []
    for i, (part, name, ext, tags) in enumerate(images):
        payload = rng.randbytes(rng.choice([1, 10, 5000, 150_000]))
        binaries.append((*_binary(part, name, ext, tags, i * 3, payload), payload))
    ids = live.call(_upload(live, [req for req, _ in uploads] + [b[0] for b in binaries]))
    assert isinstance(ids, list)
    for _, records in uploads:
        live.data.readings.extend(records)
    live.data.readings.sort(key=lambda r: r["time_requested"])
    for (_, record, payload), bid in zip(binaries, ids[len(uploads) :], strict=True):
        live.data.files[bid] = (record, payload)


async def _upload(live: Live, requests: list[sync_pb.DataCaptureUploadRequest]) -> list[str]:
    channel = Channel(live.host, live.port, ssl=live.client_tls)
    try:
        creds = rpc_pb.Credentials(type="api-key", payload=live.key)
        auth = await rpc_pb.AuthServiceStub(channel).authenticate(
            rpc_pb.AuthenticateRequest(entity=live.key_id, credentials=creds)
        )
        md = {"authorization": f"Bearer {auth.access_token}"}
        stub = sync_pb.DataSyncServiceStub(channel)
        return [(await stub.data_capture_upload(r, metadata=md)).binary_data_id for r in requests]
    finally:
        channel.close()

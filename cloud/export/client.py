"""The gRPC adapter of the export: authenticate, count and page a Ferry (or Viam) cloud.

``open_source`` connects (h2c, or TLS with ALPN ``h2``), exchanges the API key
for a bearer token with ``proto.rpc.v1.AuthService`` and yields a
``GrpcPageSource``, which sends ``authorization: Bearer <token>`` on every
``viam.app.data.v1.DataService`` call and turns the responses into the plain
records of ``source``. This is the only export module that imports grpclib.

Errors are classified once, here (STYLE §10): UNAVAILABLE is retried with a
short backoff (a server restarting or draining), UNAUTHENTICATED mid-export
re-authenticates once (the token expired), RESOURCE_EXHAUSTED becomes
``PageTooLarge`` and everything else becomes an ``ExportError`` naming the
call and the server's message.

Example::

    async with open_source(Endpoint("127.0.0.1", 8080), Credentials(kid, key), spec) as src:
        total = await src.count(Kind.TABULAR)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, final

import betterproto2
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import ProtocolError, StreamTerminatedError

from cloud.export.source import (
    BinaryItem,
    BinaryPage,
    ExportError,
    Kind,
    PageTooLarge,
    TabularPage,
    UsageError,
)
from protos.gen.proto.rpc import v1 as rpc_pb
from protos.gen.viam.app.data import v1 as data_pb

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from actors.codec import JsonValue
    from cloud.export.source import FilterSpec, Record

T = TypeVar("T")
API_KEY_TYPE = "api-key"
RPC_TIMEOUT_S = 120.0  # per call, connecting included: an unreachable host fails, not hangs
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # UNAVAILABLE: the server restarts or drains
_RETRYABLE = frozenset({Status.UNAVAILABLE})
_TRANSPORT_ERRORS = (OSError, StreamTerminatedError, ProtocolError, EOFError)
_TABULAR = "TabularDataByFilter"
_BINARY = "BinaryDataByFilter"


@dataclass(frozen=True)
class Credentials:
    """An API key: its id (``entity``) and its secret."""

    key_id: str
    key: str


@dataclass(frozen=True)
class Endpoint:
    """Where the cloud listens; ``tls`` None means plain HTTP/2 (h2c)."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client TLS context for gRPC: system roots (or ``ca_file``), ALPN ``h2``.

    Raises:
        UsageError: ``ca_file`` cannot be read or holds no certificate.
    """
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--tls-ca {ca_file}: {detail}") from None
    ctx.set_alpn_protocols(["h2"])
    return ctx


def rfc3339(value: dt.datetime | None) -> str | None:
    """``value`` as RFC 3339 UTC with microseconds (``2024-05-01T12:00:00.000001Z``).

    betterproto2 unwraps a protobuf Timestamp into a ``datetime``, so
    microseconds is all the precision a response carries.
    """
    if value is None:
        return None
    utc = value.astimezone(dt.UTC) if value.tzinfo else value
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def filter_message(spec: FilterSpec) -> data_pb.Filter:
    """The ``viam.app.data.v1.Filter`` for ``spec``; tags match any (``MATCH_BY_OR``)."""
    interval = None
    if spec.start is not None or spec.end is not None:
        interval = data_pb.CaptureInterval(start=spec.start, end=spec.end)
    tags = None
    if spec.tags:
        tags = data_pb.TagsFilter(type=data_pb.TagsFilterType.MATCH_BY_OR, tags=list(spec.tags))
    return data_pb.Filter(
        part_id=spec.part_id,
        component_name=spec.component_name,
        component_type=spec.component_type,
        method=spec.method,
        interval=interval,
        tags_filter=tags,
    )


@contextlib.asynccontextmanager
async def open_source(
    endpoint: Endpoint, credentials: Credentials, spec: FilterSpec
) -> AsyncIterator[GrpcPageSource]:
    """Connects and authenticates; the channel is closed on exit.

    Raises:
        ExportError: the server is unreachable or refuses the key.
    """
    channel = Channel(endpoint.host, endpoint.port, ssl=endpoint.tls)
    try:
        source = GrpcPageSource(channel, credentials, spec, address=str(endpoint))
        await source.authenticate()
        yield source
    finally:
        channel.close()


@final
class GrpcPageSource:
    """``PageSource`` over ``DataService.{Tabular,Binary}DataByFilter``, ascending order.

    Args:
        channel: an open grpclib channel.
        credentials: the API key.
        spec: the filter every call sends.
        address: how error messages name the server.
        rpc_timeout: the deadline of each call, in seconds.
        sleep: the backoff between retries (injected for tests).
    """

    def __init__(
        self,
        channel: Channel,
        credentials: Credentials,
        spec: FilterSpec,
        *,
        address: str,
        rpc_timeout: float = RPC_TIMEOUT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._auth = rpc_pb.AuthServiceStub(channel)
        self._data = data_pb.DataServiceStub(channel)
        self._credentials = credentials
        self._filter = filter_message(spec)
        self._address = address
        self._rpc_timeout = rpc_timeout
        self._sleep = sleep
        self._token = ""

    async def authenticate(self) -> None:
        """Exchanges the API key for a bearer token (the next calls send it)."""
        creds = rpc_pb.Credentials(type=API_KEY_TYPE, payload=self._credentials.key)
        request = rpc_pb.AuthenticateRequest(entity=self._credentials.key_id, credentials=creds)
        self._token = ""
        response = await self._call("Authenticate", self._auth.authenticate, request)
        self._token = response.access_token

    async def count(self, kind: Kind) -> int:
        """How many items of ``kind`` match (``count_only``)."""
        request = data_pb.DataRequest(filter=self._filter)
        if kind is Kind.TABULAR:
            tab = data_pb.TabularDataByFilterRequest(data_request=request, count_only=True)
            return (await self._call(_TABULAR, self._data.tabular_data_by_filter, tab)).count
        binary = data_pb.BinaryDataByFilterRequest(data_request=request, count_only=True)
        return (await self._call(_BINARY, self._data.binary_data_by_filter, binary)).count

    async def tabular_page(self, last: str, limit: int) -> TabularPage:
        """Up to ``limit`` readings after ``last``, as ``writers.TABULAR_COLUMNS`` records."""
        request = data_pb.TabularDataByFilterRequest(data_request=self._request(last, limit))
        got = await self._call(_TABULAR, self._data.tabular_data_by_filter, request)
        return TabularPage(tuple(_tabular_record(got, item) for item in got.data), got.last)

    async def binary_page(self, last: str, limit: int) -> BinaryPage:
        """Up to ``limit`` binary items after ``last``, with their bytes."""
        request = data_pb.BinaryDataByFilterRequest(
            data_request=self._request(last, limit), include_binary=True
        )
        got = await self._call(_BINARY, self._data.binary_data_by_filter, request)
        return BinaryPage(tuple(_binary_item(item) for item in got.data), got.last)

    def _request(self, last: str, limit: int) -> data_pb.DataRequest:
        return data_pb.DataRequest(
            filter=self._filter, limit=limit, last=last, sort_order=data_pb.Order.ASCENDING
        )

    async def _call(self, what: str, rpc: Callable[..., Awaitable[T]], request: object) -> T:
        """``rpc(request)`` with the token and deadline; retries, re-authenticates, maps errors."""
        retries = iter(RETRY_DELAYS_S)
        renewed = False
        while True:
            metadata = {"authorization": f"Bearer {self._token}"} if self._token else None
            try:
                return await rpc(request, metadata=metadata, timeout=self._rpc_timeout)
            except GRPCError as exc:
                if exc.status is Status.UNAUTHENTICATED and self._token and not renewed:
                    renewed = True  # the token expired mid-export: get a new one, once
                    await self.authenticate()
                    continue
                delay = next(retries, None) if exc.status in _RETRYABLE else None
                if delay is None:
                    raise self._error(what, exc) from None
                await self._sleep(delay)
            except TimeoutError:
                raise ExportError(
                    f"{what}: no answer from {self._address} within {self._rpc_timeout:g} s"
                ) from None
            except _TRANSPORT_ERRORS as exc:
                detail = str(exc) or type(exc).__name__
                raise ExportError(f"cannot reach {self._address}: {detail}") from None

    def _error(self, what: str, exc: GRPCError) -> ExportError:
        message = exc.message or "(no message)"
        if exc.status is Status.UNAUTHENTICATED:
            return ExportError(
                f"authentication failed at {self._address}: {message} "
                "(check --key-id/--key or FERRY_API_KEY_ID/FERRY_API_KEY)"
            )
        if exc.status is Status.RESOURCE_EXHAUSTED:
            return PageTooLarge(f"{what}: {message}")
        return ExportError(f"{what} failed at {self._address}: {exc.status.name}: {message}")


def _struct_json(struct: object) -> dict[str, JsonValue]:
    """A ``google.protobuf.Struct`` as a plain dict (``None``: empty)."""
    to_dict = getattr(struct, "to_dict", None)
    if to_dict is None:
        return {}
    value: dict[str, JsonValue] = to_dict()
    return value


def _tabular_record(page: data_pb.TabularDataByFilterResponse, item: data_pb.TabularData) -> Record:
    if item.metadata_index >= len(page.metadata):
        raise ExportError(f"malformed page: metadata_index {item.metadata_index} is out of range")
    md = page.metadata[item.metadata_index]
    return {
        "time_requested": rfc3339(item.time_requested),
        "time_received": rfc3339(item.time_received),
        "part_id": md.part_id,
        "component_type": md.component_type,
        "component_name": md.component_name,
        "method_name": md.method_name,
        "tags": list(md.tags),
        "data": _struct_json(item.data),
    }


def _binary_item(item: data_pb.BinaryData) -> BinaryItem:
    meta = item.metadata or data_pb.BinaryMetadata()
    cap = meta.capture_metadata or data_pb.CaptureMetadata()
    if meta.file_size_bytes and meta.file_size_bytes != len(item.binary):
        raise ExportError(
            f"binary item {meta.binary_data_id!r}: got {len(item.binary)} bytes, "
            f"the server says it has {meta.file_size_bytes}"
        )
    annotations: JsonValue = None
    if meta.annotations is not None:
        annotations = meta.annotations.to_dict(casing=betterproto2.Casing.SNAKE)
    record: Record = {
        "binary_data_id": meta.binary_data_id,
        "file_name": meta.file_name,
        "file_ext": meta.file_ext,
        "size_bytes": len(item.binary),
        "sha256": hashlib.sha256(item.binary).hexdigest(),
        "mime_type": cap.mime_type,
        "time_requested": rfc3339(meta.time_requested),
        "time_received": rfc3339(meta.time_received),
        "organization_id": cap.organization_id,
        "location_id": cap.location_id,
        "robot_name": cap.robot_name,
        "robot_id": cap.robot_id,
        "part_name": cap.part_name,
        "part_id": cap.part_id,
        "component_type": cap.component_type,
        "component_name": cap.component_name,
        "method_name": cap.method_name,
        "tags": list(cap.tags),
        "dataset_ids": list(meta.dataset_ids),
        "annotations": annotations,
    }
    return BinaryItem(meta.binary_data_id, cap.component_name, meta.file_ext, item.binary, record)

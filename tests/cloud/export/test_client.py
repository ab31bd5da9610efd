"""``GrpcPageSource`` without a network: error mapping, retries, re-auth, conversions."""

from __future__ import annotations

import datetime as dt

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status

from cloud.aio_loop import run_asyncio
from cloud.export.client import Credentials, GrpcPageSource, filter_message, rfc3339
from cloud.export.source import ExportError, FilterSpec, Kind, PageTooLarge
from protos.gen.google.protobuf import Struct
from protos.gen.proto.rpc import v1 as rpc_pb
from protos.gen.viam.app.data import v1 as data_pb


class _Stub:
    """Answers each call with the next scripted outcome (an exception or a response)."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[object, dict | None]] = []

    # The signature of a betterproto2 grpclib stub method, `timeout` included.
    async def __call__(self, request: object, *, metadata: dict | None, timeout: float) -> object:  # noqa: ASYNC109
        self.calls.append((request, metadata))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class _Auth:
    def __init__(self) -> None:
        self.tokens = iter(["t1", "t2", "t3"])
        self.authenticate = _Stub(
            *(rpc_pb.AuthenticateResponse(access_token=t) for t in self.tokens)
        )


class _Data:
    def __init__(self, tabular: _Stub | None = None, binary: _Stub | None = None) -> None:
        self.tabular_data_by_filter = tabular or _Stub()
        self.binary_data_by_filter = binary or _Stub()


def _source(data: _Data, sleeps: list[float]) -> tuple[GrpcPageSource, _Auth]:
    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async def make() -> GrpcPageSource:
        channel = Channel("127.0.0.1", 1)
        source = GrpcPageSource(
            channel, Credentials("kid", "key"), FilterSpec(), address="h:1", sleep=sleep
        )
        channel.close()
        return source

    source = run_asyncio(make())
    auth = _Auth()
    source._auth, source._data = auth, data  # type: ignore[assignment]
    run_asyncio(source.authenticate())
    return source, auth


def _page(n: int = 1, last: str = "") -> data_pb.TabularDataByFilterResponse:
    md = data_pb.CaptureMetadata(part_id="p", component_name="env", tags=["a"])
    item = data_pb.TabularData(
        data=Struct.from_dict({"x": 1.5}),
        metadata_index=0,
        time_requested=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
    )
    return data_pb.TabularDataByFilterResponse(metadata=[md], data=[item] * n, last=last)


def test_unavailable_is_retried_with_backoff() -> None:
    sleeps: list[float] = []
    busy = GRPCError(Status.UNAVAILABLE, "draining")
    data = _Data(tabular=_Stub(busy, busy, _page(2, "c")))
    source, _ = _source(data, sleeps)
    page = run_asyncio(source.tabular_page("", 10))
    assert sleeps == [0.5, 1.0]
    assert len(page.records) == 2
    assert page.last == "c"
    _, metadata = data.tabular_data_by_filter.calls[-1]
    assert metadata == {"authorization": "Bearer t1"}


def test_unavailable_gives_up_after_three_retries() -> None:
    sleeps: list[float] = []
    busy = GRPCError(Status.UNAVAILABLE, "down")
    source, _ = _source(_Data(tabular=_Stub(*[busy] * 4)), sleeps)
    with pytest.raises(ExportError, match="TabularDataByFilter failed at h:1: UNAVAILABLE: down"):
        run_asyncio(source.tabular_page("", 10))
    assert sleeps == [0.5, 1.0, 2.0]


def test_an_expired_token_is_renewed_once() -> None:
    expired = GRPCError(Status.UNAUTHENTICATED, "bearer token expired")
    data = _Data(tabular=_Stub(expired, _page()))
    source, auth = _source(data, [])
    run_asyncio(source.tabular_page("", 10))
    assert [md for _, md in data.tabular_data_by_filter.calls] == [
        {"authorization": "Bearer t1"},
        {"authorization": "Bearer t2"},
    ]
    assert len(auth.authenticate.calls) == 2
    assert auth.authenticate.calls[1][1] is None  # Authenticate itself carries no token

    again = _Data(tabular=_Stub(expired, expired))
    source, _ = _source(again, [])
    with pytest.raises(ExportError, match="authentication failed at h:1: bearer token expired"):
        run_asyncio(source.tabular_page("", 10))


def test_resource_exhausted_is_a_page_too_large() -> None:
    big = GRPCError(Status.RESOURCE_EXHAUSTED, "too many bytes")
    source, _ = _source(_Data(binary=_Stub(big)), [])
    with pytest.raises(PageTooLarge, match="BinaryDataByFilter: too many bytes"):
        run_asyncio(source.binary_page("", 10))


def test_count_asks_for_the_count_only() -> None:
    data = _Data(binary=_Stub(data_pb.BinaryDataByFilterResponse(count=7)))
    source, _ = _source(data, [])
    assert run_asyncio(source.count(Kind.BINARY)) == 7
    request, _ = data.binary_data_by_filter.calls[0]
    assert isinstance(request, data_pb.BinaryDataByFilterRequest)
    assert request.count_only


def test_pages_ask_ascending_with_the_cursor_and_include_binary() -> None:
    data = _Data(binary=_Stub(data_pb.BinaryDataByFilterResponse(last="")))
    source, _ = _source(data, [])
    run_asyncio(source.binary_page("cursor-1", 25))
    request, _ = data.binary_data_by_filter.calls[0]
    assert isinstance(request, data_pb.BinaryDataByFilterRequest)
    assert request.include_binary
    assert request.data_request is not None
    assert (request.data_request.last, request.data_request.limit) == ("cursor-1", 25)
    assert request.data_request.sort_order == data_pb.Order.ASCENDING


def test_a_binary_item_of_the_wrong_size_is_refused() -> None:
    meta = data_pb.BinaryMetadata(binary_data_id="b1", file_size_bytes=5)
    reply = data_pb.BinaryDataByFilterResponse(
        data=[data_pb.BinaryData(binary=b"abc", metadata=meta)]
    )
    source, _ = _source(_Data(binary=_Stub(reply)), [])
    with pytest.raises(ExportError, match="'b1': got 3 bytes, the server says it has 5"):
        run_asyncio(source.binary_page("", 1))


def test_a_bad_metadata_index_is_refused() -> None:
    page = _page()
    page.data[0].metadata_index = 3
    source, _ = _source(_Data(tabular=_Stub(page)), [])
    with pytest.raises(ExportError, match="metadata_index 3 is out of range"):
        run_asyncio(source.tabular_page("", 1))


def test_records_carry_the_reading_and_its_metadata() -> None:
    source, _ = _source(_Data(tabular=_Stub(_page())), [])
    (record,) = run_asyncio(source.tabular_page("", 1)).records
    assert record == {
        "time_requested": "2024-05-01T00:00:00.000000Z",
        "time_received": None,
        "part_id": "p",
        "component_type": "",
        "component_name": "env",
        "method_name": "",
        "tags": ["a"],
        "data": {"x": 1.5},
    }


def test_rfc3339_is_utc_with_microseconds() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert (
        rfc3339(dt.datetime(2024, 5, 1, 14, 0, 0, 7, tzinfo=plus2)) == "2024-05-01T12:00:00.000007Z"
    )
    assert rfc3339(dt.datetime(5, 1, 2, tzinfo=dt.UTC)) == "0005-01-02T00:00:00.000000Z"
    assert rfc3339(None) is None


def test_filter_message_maps_every_field() -> None:
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    spec = FilterSpec("p", "cam", "rdk:component:camera", "ReadImage", start, None, ("a", "b"))
    msg = filter_message(spec)
    assert (msg.part_id, msg.component_name, msg.component_type, msg.method) == (
        "p", "cam", "rdk:component:camera", "ReadImage",
    )  # fmt: skip
    assert msg.interval is not None
    assert (msg.interval.start, msg.interval.end) == (start, None)
    assert msg.tags_filter is not None
    assert msg.tags_filter.type == data_pb.TagsFilterType.MATCH_BY_OR
    assert msg.tags_filter.tags == ["a", "b"]
    empty = filter_message(FilterSpec())
    assert empty.interval is None
    assert empty.tags_filter is None

"""The hand-written ``UploadFiles`` codec (actors/codec/_upload_files.py).

Guarantees: it encodes exactly the bytes betterproto2 does for the same values;
it decodes betterproto2's bytes, its own, and any other valid encoding (fields
reordered, unknown fields of every wire type, repeated fields: last wins, a
repeated ``identity`` merges) to the same values Google's protobuf runtime
finds; malformed bytes are a ``ValueError`` naming the message, the field and
the offset, never another exception; the server answers them INVALID_ARGUMENT;
and the robot's uploader and the server interoperate with betterproto2 peers.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.encoder import _VarintBytes
from google.protobuf.message import DecodeError
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.adapters.aio import open_aio_loop
from actors.adapters.cloud_link import CloudLink
from actors.adapters.grpc_uploader import UPLOAD_FILES, GrpcUploader
from actors.codec import (
    UPLOAD_FILES_PATH,
    SmallFileResultWire,
    SmallFileWire,
    UploadFilesRequestWire,
    UploadFilesResponseWire,
)
from actors.errors import TransientError
from actors.ports import (
    NO_BINARY,
    NO_FILES,
    NO_TAGS,
    Confirmation,
    FileIdentity,
    FileKind,
    SmallFile,
)
from cloud.rpc._codec import StrictProtoCodec
from protos.gen.ferry.sync import v1 as pb
from protos.gen.proto.rpc import v1 as rpc_pb
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cli.captures import write_tabular
from tests.cloud.rpc.conftest import authed_metadata, run, start_server
from tests.cloud.wire import Raw
from tests.sync.cloudfixture import PART, cloud_settings, running_grpc_server

ROOT = Path(__file__).resolve().parents[2]
UINT64_MAX = 2**64 - 1

# ------------------------------------------------------------------ strategies

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "é", "\U0001f916", "\U0010ffff", "x" * 200]),
)
blobs = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\x00", b"z" * 20_000]))
uint64s = st.one_of(
    st.integers(0, UINT64_MAX),
    st.sampled_from([0, 1, 127, 128, 16383, 16384, 2**63, UINT64_MAX]),
)
# An arbitrary file's metadata, as the robot serializes it (betterproto2's bytes).
metadatas = st.one_of(
    st.just(b""),
    st.builds(
        datasync.UploadMetadata,
        part_id=texts,
        file_name=texts,
        file_extension=texts,
        type=st.sampled_from([datasync.DataType.UNSPECIFIED, datasync.DataType.FILE]),
        tags=st.lists(texts, max_size=2),
        dataset_ids=st.lists(texts, max_size=2),
    )
    .map(bytes)
    .filter(bool),
)
small_files = st.builds(
    SmallFileWire,
    part_id=texts,
    path=texts,
    size=uint64s,
    sha256=blobs,
    data=blobs,
    tags=st.lists(texts, max_size=3).map(tuple),
    kind=st.sampled_from([0, 1, 2]),
    metadata=metadatas,
)
results = st.builds(
    SmallFileResultWire,
    upload_id=texts,
    file_id=texts,
    records=uint64s,
    error_code=texts,
    error=texts,
)
PROPERTY = settings(max_examples=200, deadline=None)


def to_betterproto(request: UploadFilesRequestWire) -> pb.UploadFilesRequest:
    return pb.UploadFilesRequest(
        files=[
            pb.SmallFile(
                identity=pb.FileIdentity(
                    part_id=f.part_id, path=f.path, size=f.size, sha256=f.sha256
                ),
                data=f.data,
                tags=list(f.tags),
                kind=pb.UploadKind(f.kind),
                upload_metadata=datasync.UploadMetadata.parse(f.metadata) if f.metadata else None,
            )
            for f in request.files
        ]
    )


def from_betterproto(request: pb.UploadFilesRequest) -> list[SmallFileWire]:
    out = []
    for f in request.files:
        ident = f.identity or pb.FileIdentity()
        metadata = bytes(f.upload_metadata) if f.upload_metadata is not None else b""
        out.append(
            SmallFileWire(
                ident.part_id,
                ident.path,
                ident.size,
                ident.sha256,
                f.data,
                tuple(f.tags),
                int(f.kind),
                metadata,
            )
        )
    return out


def reply_to_betterproto(reply: UploadFilesResponseWire) -> pb.UploadFilesResponse:
    return pb.UploadFilesResponse(
        results=[
            pb.SmallFileResult(
                upload_id=r.upload_id,
                file_id=r.file_id,
                records=r.records,
                error_code=r.error_code,
                error=r.error,
            )
            for r in reply.results
        ]
    )


def reply_from_betterproto(reply: pb.UploadFilesResponse) -> list[SmallFileResultWire]:
    return [
        SmallFileResultWire(r.upload_id, r.file_id, r.records, r.error_code, r.error)
        for r in reply.results
    ]


# ------------------------------------------------ Google's runtime, as an oracle


@functools.cache
def google_classes() -> tuple[Any, Any]:
    """``(UploadFilesRequest, UploadFilesResponse)`` compiled by protoc from the .proto source.

    Google's runtime (upb) is an implementation independent of both betterproto2
    and the hand-written codec, built here from protos/src at test time.
    """
    pool = google_pool()
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("ferry.sync.v1.UploadFilesRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("ferry.sync.v1.UploadFilesResponse")
        ),
    )


def google_canonical_metadata(raw: bytes) -> bytes:
    """``raw`` parsed and serialized by Google's runtime (it raises if ``raw`` is invalid)."""
    cls = message_factory.GetMessageClass(
        google_pool().FindMessageTypeByName("viam.app.datasync.v1.UploadMetadata")
    )
    return cls.FromString(raw).SerializeToString() if raw else b""


@functools.cache
def google_pool() -> Any:
    """A descriptor pool of resumable.proto and its imports, compiled by protoc."""
    with tempfile.TemporaryDirectory() as out:
        descriptor_set = Path(out) / "resumable.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{ROOT / 'protos' / 'src'}",
                f"-I{importlib.resources.files('grpc_tools') / '_proto'}",
                f"--descriptor_set_out={descriptor_set}",
                "--include_imports",
                "ferry/sync/v1/resumable.proto",
            ],
            check=True,
            capture_output=True,
        )
        raw = descriptor_set.read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(raw)
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # dependencies come first
        pool.Add(file)
    return pool


def google_request(data: bytes) -> list[SmallFileWire]:
    message = google_classes()[0].FromString(data)
    return [
        SmallFileWire(
            f.identity.part_id,
            f.identity.path,
            f.identity.size,
            f.identity.sha256,
            f.data,
            tuple(f.tags),
            f.kind,
            f.upload_metadata.SerializeToString() if f.HasField("upload_metadata") else b"",
        )
        for f in message.files
    ]


def google_response(data: bytes) -> list[SmallFileResultWire]:
    message = google_classes()[1].FromString(data)
    return [
        SmallFileResultWire(r.upload_id, r.file_id, r.records, r.error_code, r.error)
        for r in message.results
    ]


# ------------------------------------------------------ encoding and round trips


@PROPERTY
@given(files=st.lists(small_files, max_size=20))
def test_request_bytes_are_betterproto2s_and_decode_back_to_the_same_files(files):
    request = UploadFilesRequestWire(files)
    data = request.SerializeToString()
    reference = bytes(to_betterproto(request))
    assert data == reference
    assert UploadFilesRequestWire.FromString(data) == request
    assert UploadFilesRequestWire.FromString(reference).files == files
    assert from_betterproto(pb.UploadFilesRequest.FromString(data)) == files
    assert google_request(data) == files


@PROPERTY
@given(replies=st.lists(results, max_size=20))
def test_response_bytes_are_betterproto2s_and_decode_back_to_the_same_results(replies):
    reply = UploadFilesResponseWire(replies)
    data = reply.SerializeToString()
    reference = bytes(reply_to_betterproto(reply))
    assert data == reference
    assert UploadFilesResponseWire.FromString(data) == reply
    assert UploadFilesResponseWire.FromString(reference).results == replies
    assert reply_from_betterproto(pb.UploadFilesResponse.FromString(data)) == replies
    assert google_response(data) == replies


@PROPERTY
@given(files=st.lists(small_files, max_size=5), replies=st.lists(results, max_size=5))
def test_googles_encoding_decodes_to_the_same_values(files, replies):
    request_cls, response_cls = google_classes()
    request = request_cls()
    for f in files:
        item = request.files.add(data=f.data, tags=list(f.tags), kind=f.kind)
        if f.metadata:
            item.upload_metadata.MergeFromString(f.metadata)
        item.identity.part_id = f.part_id
        item.identity.path = f.path
        item.identity.size = f.size
        item.identity.sha256 = f.sha256
    reply = response_cls()
    for r in replies:
        reply.results.add(**r._asdict())
    assert UploadFilesRequestWire.FromString(request.SerializeToString()).files == files
    assert UploadFilesResponseWire.FromString(reply.SerializeToString()).results == replies


@PROPERTY
@given(
    replies=st.lists(results, max_size=3),
    applies=st.booleans(),
    binary=st.booleans(),
    files=st.booleans(),
)
def test_the_reply_flags_are_encoded_as_betterproto2_encodes_them_and_read_back(
    replies, applies, binary, files
):
    reply = UploadFilesResponseWire(
        replies, applies_tags=applies, takes_binary=binary, takes_files=files
    )
    data = reply.SerializeToString()
    reference = reply_to_betterproto(reply)
    reference.applies_tags = applies
    reference.takes_binary = binary
    reference.takes_files = files
    assert data == bytes(reference)
    assert UploadFilesResponseWire.FromString(data) == reply
    assert pb.UploadFilesResponse.FromString(data).applies_tags is applies
    google = google_classes()[1].FromString(data)
    assert (google.applies_tags, google.takes_binary, google.takes_files) == (
        applies,
        binary,
        files,
    )


def test_applies_tags_is_any_non_zero_varint_and_the_last_occurrence_wins():
    result = ld(1, ld(1, b"up-1"))
    for data, expected in [
        (result + b"\x10\x02", True),
        (b"\x10\x01" + result + b"\x10\x00", False),
        (b"\x10\x00" + result + b"\x10\x81\x00", True),
        (result, False),
    ]:
        reply = UploadFilesResponseWire.FromString(data)
        assert reply.applies_tags is expected
        assert google_classes()[1].FromString(data).applies_tags is expected
        assert reply.results == [SmallFileResultWire("up-1", "", 0, "", "")]


def test_out_of_range_numbers_are_refused_when_encoding():
    for size in (-1, 2**64):
        with pytest.raises(ValueError, match="size"):
            UploadFilesRequestWire([SmallFileWire("p", "a", size, b"", b"")]).SerializeToString()
    with pytest.raises(ValueError, match="records"):
        UploadFilesResponseWire([SmallFileResultWire("", "", 2**64, "", "")]).SerializeToString()


# --------------------------------------------- other valid encodings than ours


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    """One field: tag, then (for length-delimited) the length, then the payload."""
    tag = _VarintBytes(number << 3 | wire_type)
    if wire_type == 2:
        return tag + _VarintBytes(len(payload)) + payload
    return tag + payload


def ld(number: int, payload: bytes) -> bytes:
    return field(number, 2, payload)


UNKNOWN_OF_EVERY_WIRE_TYPE = [
    field(9, 0, b"\x96\x01"),  # varint 150
    field(10, 0, b"\xff" * 9 + b"\x01"),  # varint 2**64 - 1
    field(11, 1, b"12345678"),  # fixed64
    ld(12, b"anything\xff"),  # length-delimited, not UTF-8
    ld(13, b""),
    field(14, 5, b"1234"),  # fixed32
    field(15, 0, b"\x00"),
    b"\x80\x01\x00",  # field 16 (a two-byte tag), varint 0
]


def test_reordered_fields_and_unknown_fields_of_every_wire_type_decode_to_the_same_file():
    identity = b"".join(
        [
            *UNKNOWN_OF_EVERY_WIRE_TYPE,
            ld(4, b"\x01\x02"),  # sha256, first
            field(3, 0, b"\xe8\x07"),  # size 1000
            *UNKNOWN_OF_EVERY_WIRE_TYPE,
            ld(2, "dir/é.capture".encode()),
            ld(1, b"part-1"),
        ]
    )
    small = b"".join(
        [*UNKNOWN_OF_EVERY_WIRE_TYPE, ld(2, b"DATA"), *UNKNOWN_OF_EVERY_WIRE_TYPE, ld(1, identity)]
    )
    data = b"".join([*UNKNOWN_OF_EVERY_WIRE_TYPE, ld(1, small), *UNKNOWN_OF_EVERY_WIRE_TYPE])
    expected = [SmallFileWire("part-1", "dir/é.capture", 1000, b"\x01\x02", b"DATA")]
    assert UploadFilesRequestWire.FromString(data).files == expected
    assert google_request(data) == expected
    assert from_betterproto(pb.UploadFilesRequest.FromString(data)) == expected

    result = b"".join(
        [
            *UNKNOWN_OF_EVERY_WIRE_TYPE,
            ld(5, b"why"),
            ld(4, b"INVALID_ARGUMENT"),
            field(3, 0, b"\x07"),
            ld(2, b"file-1"),
            *UNKNOWN_OF_EVERY_WIRE_TYPE,
            ld(1, b"up-1"),
        ]
    )
    reply = b"".join([*UNKNOWN_OF_EVERY_WIRE_TYPE, ld(1, result), ld(1, b"")])
    expected_results = [
        SmallFileResultWire("up-1", "file-1", 7, "INVALID_ARGUMENT", "why"),
        SmallFileResultWire("", "", 0, "", ""),
    ]
    assert UploadFilesResponseWire.FromString(reply).results == expected_results
    assert google_response(reply) == expected_results


def test_the_last_occurrence_of_a_repeated_scalar_field_wins():
    identity = ld(1, b"old") + field(3, 0, b"\x05") + ld(1, b"new") + field(3, 0, b"\x06")
    small = ld(2, b"old data") + ld(1, identity) + ld(2, b"new data")
    data = ld(1, small)
    expected = [SmallFileWire("new", "", 6, b"", b"new data")]
    assert UploadFilesRequestWire.FromString(data).files == expected
    assert google_request(data) == expected
    assert from_betterproto(pb.UploadFilesRequest.FromString(data)) == expected

    result = ld(1, b"a") + ld(5, b"e1") + field(3, 0, b"\x01") + ld(1, b"b") + ld(5, b"e2")
    reply = ld(1, result)
    expected_results = [SmallFileResultWire("b", "", 1, "", "e2")]
    assert UploadFilesResponseWire.FromString(reply).results == expected_results
    assert google_response(reply) == expected_results


def test_repeated_upload_metadata_merges_as_protobuf_specifies():
    """Two ``upload_metadata`` occurrences are one message: the codec keeps both encodings
    in order, and parsing that is protobuf's merge (the later name wins, tags add up)."""
    first = bytes(datasync.UploadMetadata(file_name="a.txt", tags=["t1"]))
    second = bytes(datasync.UploadMetadata(file_name="b.txt", tags=["t2"]))
    data = ld(1, ld(2, b"x") + ld(5, first) + field(4, 0, b"\x02") + ld(5, second))
    [decoded] = UploadFilesRequestWire.FromString(data).files
    assert decoded.kind == 2
    merged = datasync.UploadMetadata.parse(decoded.metadata)
    assert (merged.file_name, merged.tags) == ("b.txt", ["t1", "t2"])
    [google] = google_request(data)
    assert google.metadata == google_canonical_metadata(decoded.metadata)


def test_a_repeated_identity_merges_into_the_earlier_one_as_protobuf_specifies():
    """Two ``identity`` occurrences are one message (protobuf's merge), as Google parses it.

    betterproto2 differs here: it keeps only the last occurrence. No encoder
    splits a message like this; the codec follows the protobuf spec.
    """
    first = ld(1, b"part-1") + field(3, 0, b"\x09") + ld(4, b"\xaa")
    second = ld(2, b"a.capture") + ld(4, b"\xbb")
    data = ld(1, ld(1, first) + ld(2, b"x") + ld(1, second))
    merged = [SmallFileWire("part-1", "a.capture", 9, b"\xbb", b"x")]
    assert UploadFilesRequestWire.FromString(data).files == merged
    assert google_request(data) == merged
    assert from_betterproto(pb.UploadFilesRequest.FromString(data)) == [
        SmallFileWire("", "a.capture", 0, b"\xbb", b"x")
    ]


def test_tags_are_kept_in_wire_order_wherever_they_stand_among_the_other_fields():
    identity = ld(1, b"part-1") + field(3, 0, b"\x01")
    small = ld(3, b"first") + ld(1, identity) + ld(3, "é".encode()) + ld(2, b"x") + ld(3, b"")
    data = ld(1, small)
    expected = [SmallFileWire("part-1", "", 1, b"", b"x", ("first", "é", ""))]
    assert UploadFilesRequestWire.FromString(data).files == expected
    assert google_request(data) == expected
    assert from_betterproto(pb.UploadFilesRequest.FromString(data)) == expected


def test_a_file_without_an_identity_has_default_identity_fields():
    data = ld(1, ld(2, b"x")) + ld(1, b"")
    assert UploadFilesRequestWire.FromString(data).files == [
        SmallFileWire("", "", 0, b"", b"x"),
        SmallFileWire("", "", 0, b"", b""),
    ]


def test_non_minimal_varints_and_tags_are_accepted():
    # Overlong encodings are valid protobuf: a two-byte tag for field 1 and a
    # three-byte length and size.
    identity = b"\x98\x00" + b"\x85\x80\x00"  # size = 5
    data = b"\x8a\x00" + b"\x87\x80\x00" + b"\x0a\x05" + identity
    expected = [SmallFileWire("", "", 5, b"", b"")]
    assert UploadFilesRequestWire.FromString(data).files == expected
    assert google_request(data) == expected


# ------------------------------------------------------------- malformed bytes

REQ = "UploadFilesRequest"
MALFORMED_REQUESTS = [
    (
        b"\x0a\x04\x0a\x02\x1a\x00",
        f"{REQ}.files[0].identity.size: wire type 2, expected varint (offset 4)",
    ),
    (b"\x0a\x04\x0a\x02\x18\x80", f"{REQ}.files[0].identity.size: truncated varint (offset 5)"),
    (
        b"\x0a\x0d\x0a\x0b\x18" + b"\xff" * 9 + b"\x7f",
        f"{REQ}.files[0].identity.size: varint over 64 bits (offset 5)",
    ),
    (
        b"\x0a\x0e\x0a\x0c\x18" + b"\xff" * 10 + b"\x01",
        f"{REQ}.files[0].identity.size: varint longer than 10 bytes (offset 5)",
    ),
    (
        b"\x0a\x05\x0a\x03\x0a\x01\xff",
        f"{REQ}.files[0].identity.part_id: invalid UTF-8 (invalid start byte) (offset 6)",
    ),
    (
        b"\x0a\x07\x0a\x05\x12\x03\xed\xa0\x80",  # a UTF-16 surrogate, encoded
        f"{REQ}.files[0].identity.path: invalid UTF-8 (invalid continuation byte) (offset 6)",
    ),
    (
        b"\x0a\x03\x12\x10\xab",
        f"{REQ}.files[0].data: length 16 exceeds the bytes left (1) (offset 3)",
    ),
    (
        b"\x0a\x02\x0a\x05",
        f"{REQ}.files[0].identity: length 5 exceeds the bytes left (0) (offset 3)",
    ),
    (
        b"\x0a\x00\x0a\x02\x12\x05",
        f"{REQ}.files[1].data: length 5 exceeds the bytes left (0) (offset 5)",
    ),
    (
        b"\x0a\x02\x18\x01",
        f"{REQ}.files[0].tags: wire type 0, expected length-delimited (offset 2)",
    ),
    (
        b"\x0a\x03\x1a\x01\xff",
        f"{REQ}.files[0].tags[0]: invalid UTF-8 (invalid start byte) (offset 4)",
    ),
    (
        b"\x0a\x04\x1a\x00\x1a\x05",
        f"{REQ}.files[0].tags[1]: length 5 exceeds the bytes left (0) (offset 5)",
    ),
    (b"\x0a", f"{REQ}.files[0]: truncated length (offset 1)"),
    (b"\x0a\x80", f"{REQ}.files[0]: truncated length (offset 1)"),
    (
        b"\x0a\x02\x10\x01",
        f"{REQ}.files[0].data: wire type 0, expected length-delimited (offset 2)",
    ),
    (b"\x08\x01", f"{REQ}.files: wire type 0, expected length-delimited (offset 0)"),
    (b"\x0b", f"{REQ}.files: group wire type 3 (deprecated) is not supported (offset 0)"),
    (
        b"\x0a\x01\x34",
        f"{REQ}.files[0].(field 6): group wire type 4 (deprecated) is not supported (offset 2)",
    ),
    (b"\x0a\x02\x22\x00", f"{REQ}.files[0].kind: wire type 2, expected varint (offset 2)"),
    (b"\x0a\x01\x20", f"{REQ}.files[0].kind: truncated varint (offset 3)"),
    (
        b"\x0a\x02\x2a\x05",
        f"{REQ}.files[0].upload_metadata: length 5 exceeds the bytes left (0) (offset 3)",
    ),
    (b"\x7f", f"{REQ}.(field 15): invalid wire type 7 (offset 0)"),
    (b"\x0a\x02\x00\x00", f"{REQ}.files[0]: field number 0 (offset 2)"),
    (b"\x0a\x01\x80", f"{REQ}.files[0]: truncated tag (offset 2)"),
    (b"\x80\x80\x80\x80\x10", f"{REQ}: tag 4294967296 over 32 bits (offset 0)"),
    (
        b"\x0a\x03\x35\x00\x00",
        f"{REQ}.files[0].(field 6): fixed32 exceeds the bytes left (2) (offset 3)",
    ),
    (b"\x19\x00", f"{REQ}.(field 3): fixed64 exceeds the bytes left (1) (offset 1)"),
    (b"\x0a\x00\x10" + b"\x80" * 10, f"{REQ}.(field 2): varint longer than 10 bytes (offset 3)"),
]
RESP = "UploadFilesResponse"
MALFORMED_RESPONSES = [
    (b"\x0a\x02\x1a\x00", f"{RESP}.results[0].records: wire type 2, expected varint (offset 2)"),
    (b"\x0a\x02\x18\xff", f"{RESP}.results[0].records: truncated varint (offset 3)"),
    (
        b"\x0a\x00\x0a\x03\x2a\x01\xc3",
        f"{RESP}.results[1].error: invalid UTF-8 (unexpected end of data) (offset 6)",
    ),
    (
        b"\x0a\x03\x22\x01\x80",
        f"{RESP}.results[0].error_code: invalid UTF-8 (invalid start byte) (offset 4)",
    ),
    (
        b"\x0a\x02\x0a\x09",
        f"{RESP}.results[0].upload_id: length 9 exceeds the bytes left (0) (offset 3)",
    ),
    (b"\x12\x01", f"{RESP}.applies_tags: wire type 2, expected varint (offset 0)"),
    (b"\x10", f"{RESP}.applies_tags: truncated varint (offset 1)"),
    (b"\x10" + b"\xff" * 9 + b"\x7f", f"{RESP}.applies_tags: varint over 64 bits (offset 1)"),
    (b"\x1a\x01", f"{RESP}.takes_binary: wire type 2, expected varint (offset 0)"),
    (b"\x18", f"{RESP}.takes_binary: truncated varint (offset 1)"),
    (b"\x22\x01", f"{RESP}.takes_files: wire type 2, expected varint (offset 0)"),
    (b"\x2a\x01", f"{RESP}.(field 5): length 1 exceeds the bytes left (0) (offset 1)"),
    (b"\x0c", f"{RESP}.results: group wire type 4 (deprecated) is not supported (offset 0)"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED_REQUESTS)
def test_a_malformed_request_is_a_value_error_naming_the_field_and_offset(data, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        UploadFilesRequestWire.FromString(data)
    assert str(caught.value) == message


@pytest.mark.parametrize(("data", "message"), MALFORMED_RESPONSES)
def test_a_malformed_response_is_a_value_error_naming_the_field_and_offset(data, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        UploadFilesResponseWire.FromString(data)
    assert str(caught.value) == message


FUZZ = settings(max_examples=500, deadline=None)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request or reply with a few bytes changed, inserted, or cut off."""
    if draw(st.booleans()):
        data = bytearray(
            UploadFilesRequestWire(draw(st.lists(small_files, max_size=3))).SerializeToString()
        )
    else:
        data = bytearray(
            UploadFilesResponseWire(draw(st.lists(results, max_size=3))).SerializeToString()
        )
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "cut"]))
        if action == "set" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=3))
        else:
            del data[where:]
    return bytes(data)


@FUZZ
@given(data=st.binary(max_size=200) | mutated())
@example(data=b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")
def test_any_bytes_decode_or_raise_value_error_and_what_decodes_google_decodes_alike(data):
    for wire_type, google in (
        (UploadFilesRequestWire, google_request),
        (UploadFilesResponseWire, google_response),
    ):
        try:
            decoded: Any = wire_type.FromString(data)
        except ValueError as err:
            error = str(err)
        else:
            error = ""
        if error:
            assert re.fullmatch(r"UploadFiles(Request|Response)[^:]*: .+ \(offset \d+\)", error)
            continue
        # Whatever the codec accepts is valid protobuf, with the same values. The one
        # exception: upload_metadata stays bytes here, and the cloud parses it (an
        # invalid one is that file's INVALID_ARGUMENT), so only its meaning is compared.
        if wire_type is UploadFilesResponseWire:
            assert google(data) == decoded.results
            continue
        try:
            canonical = [
                f._replace(metadata=google_canonical_metadata(f.metadata)) for f in decoded.files
            ]
        except DecodeError:
            continue  # the cloud refuses that file (tests/cloud/ingest/test_small.py)
        assert google(data) == canonical


# --------------------------------------------------------------- the server side


def test_the_server_codec_turns_a_malformed_request_into_invalid_argument_naming_the_field():
    data, message = MALFORMED_REQUESTS[0]
    with pytest.raises(GRPCError) as caught:
        StrictProtoCodec().decode(data, UploadFilesRequestWire)
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert message in str(caught.value.message)


def test_a_real_server_answers_malformed_upload_files_invalid_argument_and_betterproto2_works(
    tmp_path,
):
    """End to end: the server's UploadFiles speaks the wire codec, a betterproto2 client too."""
    data = write_tabular(tmp_path, [{"i": 1}, {"i": 2}]).read_bytes()

    async def scenario() -> None:
        async with start_server(tmp_path / "cloud") as srv:
            md = await authed_metadata(srv, "org-a", "loc-a")
            channel = srv.channel()
            bad, message = MALFORMED_REQUESTS[0]

            async def raw_call() -> None:
                async with channel.request(
                    UPLOAD_FILES_PATH, Cardinality.UNARY_UNARY, Raw, Raw, metadata=md
                ) as stream:
                    await stream.send_message(Raw(bad), end=True)
                    await stream.recv_message()

            with pytest.raises(GRPCError) as caught:
                await raw_call()
            assert caught.value.status is Status.INVALID_ARGUMENT
            assert message in str(caught.value.message)

            request = pb.UploadFilesRequest(
                files=[
                    pb.SmallFile(
                        identity=pb.FileIdentity(
                            part_id="part-1",
                            path="sensor/env/Readings/a.capture",
                            size=len(data),
                            sha256=hashlib.sha256(data).digest(),
                        ),
                        data=data,
                    )
                ]
            )
            stub = pb.ResumableUploadServiceStub(channel)
            reply = await stub.upload_files(request, metadata=md)
            [result] = reply.results
            assert (result.error_code, result.error, result.records) == ("", "", 2)
            assert result.upload_id
            assert result.file_id

    run(scenario)


# ----------------------------------------------------------------- the robot side


class FakeAuth(rpc_pb.AuthServiceBase):
    async def authenticate(
        self, message: rpc_pb.AuthenticateRequest
    ) -> rpc_pb.AuthenticateResponse:
        return rpc_pb.AuthenticateResponse(access_token="token")


class BetterprotoUploadFiles(pb.ResumableUploadServiceBase):
    """A betterproto2 server: what the uploader's wire request decodes to there.

    ``applies_tags=False, takes_binary=False, takes_files=False`` is a server from
    before ``SmallFile.tags``, binary and arbitrary files: it says nothing of them.
    """

    def __init__(
        self, *, applies_tags: bool = False, takes_binary: bool = False, takes_files: bool = False
    ) -> None:
        self.received: list[SmallFileWire] = []
        self.requests: list[list[SmallFileWire]] = []
        self.applies_tags = applies_tags
        self.takes_binary = takes_binary
        self.takes_files = takes_files

    async def upload_files(self, message: pb.UploadFilesRequest) -> pb.UploadFilesResponse:
        self.received = from_betterproto(message)
        self.requests.append(self.received)
        return pb.UploadFilesResponse(
            applies_tags=self.applies_tags,
            takes_binary=self.takes_binary,
            takes_files=self.takes_files,
            results=[
                pb.SmallFileResult(upload_id=f"u{i}", file_id=f"f{i}", records=i + 1)
                if i % 2 == 0
                else pb.SmallFileResult(error_code="INVALID_ARGUMENT", error=f"bad {i}")
                for i in range(len(message.files))
            ],
        )


class GarbageUploadFiles(pb.ResumableUploadServiceBase):
    """Answers UploadFiles with bytes that are not an ``UploadFilesResponse``."""

    def __mapping__(self) -> dict[str, Any]:
        async def handle(stream: Any) -> None:
            await stream.recv_message()
            await stream.send_message(Raw(b"\x0a\x02\x1a\x00"))

        return {UPLOAD_FILES_PATH: Handler(handle, Cardinality.UNARY_UNARY, Raw, Raw)}


def smalls() -> list[SmallFile]:
    out = []
    for i, data in enumerate([b"abc", b"", "é".encode() * 700]):
        identity = FileIdentity(PART, f"dir/{i}.capture", len(data), hashlib.sha256(data).digest())
        out.append(SmallFile(identity, data))
    return out


async def test_the_uploaders_request_decodes_in_betterproto2_and_its_reply_maps_to_outcomes():
    service = BetterprotoUploadFiles()
    files = smalls()
    with running_grpc_server(lambda: [FakeAuth(), service]) as port:
        async with open_aio_loop():
            link = CloudLink(cloud_settings(port))
            try:
                outcomes = await GrpcUploader(link).upload_files(files)
            finally:
                await link.close()
    assert service.received == [
        SmallFileWire(
            f.identity.part_id, f.identity.path, f.identity.size, f.identity.sha256, f.data
        )
        for f in files
    ]
    assert outcomes == [
        Confirmation(file_id="f0", records=1),
        "INVALID_ARGUMENT: bad 1",
        Confirmation(file_id="f2", records=3),
    ]


NOTE = b"a note\n"
NOTE_METADATA = bytes(
    datasync.UploadMetadata(part_id=PART, type=datasync.DataType.FILE, file_name="/r/n.txt")
)


def newer_smalls() -> list[SmallFile]:
    """``smalls()``: the first with walker tags, the second plain, the third binary;
    then an arbitrary file with its metadata."""
    first, second, last = smalls()
    note = FileIdentity(PART, "notes/n.txt", len(NOTE), hashlib.sha256(NOTE).digest())
    return [
        SmallFile(first.identity, first.data, ("site-a",)),
        second,
        SmallFile(last.identity, last.data, binary=True),
        SmallFile(note, NOTE, kind=FileKind.ARBITRARY, metadata=NOTE_METADATA),
    ]


@pytest.mark.parametrize("server", ["oldest", "without-files", "newest"])
async def test_tagged_binary_and_arbitrary_files_go_only_to_a_server_that_takes_them(
    server, caplog
):
    """An older server would store tagged files without their tags and refuses binary
    and arbitrary ones: the uploader asks first (a call with no files, once), and then
    sends it only the other files; those get ``NO_TAGS``, ``NO_BINARY`` or ``NO_FILES``
    and go the resumable way. (``without-files``: the server of the release before
    arbitrary files.)"""
    newer = server != "oldest"
    service = BetterprotoUploadFiles(
        applies_tags=newer, takes_binary=newer, takes_files=server == "newest"
    )
    files = newer_smalls()
    with running_grpc_server(lambda: [FakeAuth(), service]) as port:
        async with open_aio_loop():
            link = CloudLink(cloud_settings(port))
            try:
                uploader = GrpcUploader(link)
                first = await uploader.upload_files(files)
                second = await uploader.upload_files(files)
            finally:
                await link.close()
    wire = [
        SmallFileWire(i.part_id, i.path, i.size, i.sha256, f.data, f.tags, 0, f.metadata)
        for f in files
        for i in [f.identity]
    ]
    wire[3] = wire[3]._replace(kind=int(pb.UploadKind.ARBITRARY_FILE))
    if server == "newest":
        assert service.requests == [[], wire, wire]
        expected = [
            Confirmation(file_id="f0", records=1),
            "INVALID_ARGUMENT: bad 1",
            Confirmation(file_id="f2", records=3),
            "INVALID_ARGUMENT: bad 3",
        ]
    elif server == "without-files":
        assert service.requests == [[], wire[:3], wire[:3]]
        expected = [
            Confirmation(file_id="f0", records=1),
            "INVALID_ARGUMENT: bad 1",
            Confirmation(file_id="f2", records=3),
            NO_FILES,
        ]
    else:
        assert service.requests == [[], [wire[1]], [wire[1]]]
        expected = [NO_TAGS, Confirmation(file_id="f0", records=1), NO_BINARY, NO_FILES]
    assert first == second == expected
    warned = [r for r in caplog.records if "older than this robot" in r.getMessage()]
    assert len(warned) == (0 if server == "newest" else 1)


async def test_plain_tabular_files_never_make_the_uploader_ask_what_the_server_takes():
    service = BetterprotoUploadFiles()
    with running_grpc_server(lambda: [FakeAuth(), service]) as port:
        async with open_aio_loop():
            link = CloudLink(cloud_settings(port))
            try:
                await GrpcUploader(link).upload_files(smalls())
            finally:
                await link.close()
    assert len(service.requests) == 1


async def test_a_malformed_reply_is_a_transient_error_naming_upload_files():
    with running_grpc_server(lambda: [FakeAuth(), GarbageUploadFiles()]) as port:
        async with open_aio_loop():
            link = CloudLink(cloud_settings(port))
            try:
                with pytest.raises(TransientError, match=r"results\[0\]\.records") as caught:
                    await GrpcUploader(link).upload_files(smalls())
            finally:
                await link.close()
    assert caught.value.where == UPLOAD_FILES

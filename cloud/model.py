"""The cloud's domain types: who is calling, what is stored, and how it is queried.

Transport-free frozen dataclasses shared by the ingest logic, the store port and
its adapters, and the gRPC handlers (which convert protobuf messages to and from
these). Times are integer nanoseconds since the Unix epoch, UTC; ``0`` means unset.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar, final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from actors.codec import JsonObject

T = TypeVar("T")

# A BSON-able document (SQL/MQL results): JSON-like values plus ``datetime``.
Document = dict[str, object]


@dataclass(frozen=True)
class Principal:
    """The verified caller: an API key's scope, carried by its bearer token.

    ``part_id`` is ``None`` for a key that may act for any part of its location.
    Reads are scoped to the organization (and to the part, for a part key);
    writes to the key's location (and part).
    """

    key_id: str
    org_id: str
    location_id: str
    part_id: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key: only a salted hash of the secret is kept."""

    key_id: str
    org_id: str
    location_id: str
    part_id: str | None
    secret_hash: bytes
    salt: bytes
    created_ns: int


@dataclass(frozen=True)
class PartInfo:
    """A robot part and where it belongs; claimed by the first upload that names it."""

    part_id: str
    org_id: str
    location_id: str
    part_name: str = ""
    robot_id: str = ""
    robot_name: str = ""


@dataclass(frozen=True)
class AnyValue:
    """A ``google.protobuf.Any`` kept verbatim (method parameters)."""

    type_url: str
    value: bytes


@dataclass(frozen=True)
class CaptureContext:
    """What a batch of readings was captured from: the upload's metadata.

    Built from ``UploadMetadata`` (Viam RPCs) or from a capture file's
    ``DataCaptureMetadata`` header (resumable uploads).
    """

    component_type: str
    component_name: str
    method_name: str
    method_parameters: tuple[tuple[str, AnyValue], ...] = ()
    tags: tuple[str, ...] = ()
    dataset_ids: tuple[str, ...] = ()
    mime_type: str = ""
    file_extension: str = ""


@dataclass(frozen=True)
class TabularRecord:
    """One tabular reading to store (``data`` is the Struct as JSON-like values)."""

    time_requested_ns: int
    time_received_ns: int
    data: JsonObject


@final
@dataclass(frozen=True)
class TabularJsonRows:
    """Tabular readings to store whose Structs are already JSON text.

    ``rows`` gives ``(time_requested_ns, time_received_ns, data_json)`` with
    ``data_json`` exactly what ``cloud.reading_json.reading_json`` gives for the
    Struct. Capture-file ingest makes them without building the Structs' dicts
    (``actors.codec.TabularTranscoder``); one wrapper for all rows, so a store
    takes them as they come, with nothing to do per row.
    """

    rows: Iterable[tuple[int, int, str]]


@dataclass(frozen=True)
class BlobRef:
    """An item's bytes in a content-addressed blob: ``size`` bytes at ``offset``.

    ``sha256`` (lowercase hex) names the blob *file*. Most items are a whole
    blob (``offset`` 0, ``size`` the file's size). The images of a binary
    capture file stay in that file, adopted whole as one blob, and each is the
    byte range of its record's payload: finishing an upload then copies nothing.
    """

    sha256: str
    size: int
    offset: int = 0


@dataclass(frozen=True)
class BinaryRecord:
    """One binary item (image, point cloud, arbitrary file) whose bytes are a blob.

    ``annotations`` is the ``viam.app.data.v1.Annotations`` message as JSON-like
    values (``{"bboxes": [...], "classifications": [...]}``), or ``None``.
    """

    binary_data_id: str
    blob: BlobRef
    time_requested_ns: int = 0
    time_received_ns: int = 0
    mime_type: str = ""
    file_name: str = ""
    file_ext: str = ""
    annotations: JsonObject | None = None


class UploadKind(enum.IntEnum):
    """What a resumable upload carries (numbers match ``ferry.sync.v1.UploadKind``)."""

    CAPTURE_FILE = 1
    ARBITRARY_FILE = 2


class UploadStatus(enum.IntEnum):
    """Where a resumable upload is (numbers match ``ferry.sync.v1.UploadState``)."""

    OPEN = 1
    FINISHED = 2


@dataclass(frozen=True)
class UploadIdentity:
    """A file's identity, stable across robot restarts: the key of exactly-once."""

    part_id: str
    path: str
    size: int
    sha256: bytes


@dataclass(frozen=True)
class SmallUpload:
    """A small file, verified and parsed, to store whole (``UploadFiles``).

    A tabular capture file has ``records``; a binary one, or an arbitrary file
    (``kind``), has ``binary`` items whose blob (the whole file) is already
    stored, with empty ids: they derive from the upload id, which the store
    learns in its transaction.
    """

    part: PartInfo
    identity: UploadIdentity
    ctx: CaptureContext
    records: Sequence[TabularRecord] | TabularJsonRows
    new_upload_id: str
    binary: Sequence[BinaryRecord] = ()
    kind: UploadKind = UploadKind.CAPTURE_FILE
    metadata: bytes = b""
    """The ``UploadMetadata`` it was sent with, serialized, kept as OpenUpload keeps it."""


@dataclass(frozen=True)
class UploadRecord:
    """A resumable upload's durable state.

    ``metadata`` is the serialized ``UploadMetadata`` the upload was opened with
    (may be empty). ``file_id``, ``binary_data_ids`` and ``records`` are set
    once, by the first successful finish.
    """

    upload_id: str
    org_id: str
    identity: UploadIdentity
    kind: UploadKind
    metadata: bytes
    committed_offset: int
    status: UploadStatus
    created_ns: int
    file_id: str = ""
    binary_data_ids: tuple[str, ...] = ()
    records: int = 0


class TagsMode(enum.IntEnum):
    """How a filter's tags match (numbers match ``TagsFilterType``)."""

    UNSPECIFIED = 0  # with tags given: same as MATCH_BY_OR; without: no constraint
    MATCH_BY_OR = 1
    TAGGED = 2
    UNTAGGED = 3


@dataclass(frozen=True)
class Filter:
    """Which data a query selects: fields AND together; tags and bbox labels OR.

    Empty strings and empty tuples mean "no constraint". The time interval is on
    ``time_requested`` and is inclusive at both ends (``0`` = open).
    """

    component_name: str = ""
    component_type: str = ""
    method: str = ""
    robot_name: str = ""
    robot_id: str = ""
    part_name: str = ""
    part_id: str = ""
    location_ids: tuple[str, ...] = ()
    organization_ids: tuple[str, ...] = ()
    mime_types: tuple[str, ...] = ()
    start_ns: int = 0
    end_ns: int = 0
    tags_mode: TagsMode = TagsMode.UNSPECIFIED
    tags: tuple[str, ...] = ()
    bbox_labels: tuple[str, ...] = ()
    dataset_id: str = ""


class SortOrder(enum.IntEnum):
    """Result order by (time_requested, id); numbers match ``viam.app.data.v1.Order``."""

    UNSPECIFIED = 0  # same as DESCENDING, as in Viam
    DESCENDING = 1
    ASCENDING = 2


@dataclass(frozen=True)
class PageRequest:
    """Keyset paging: ``last`` is the opaque cursor returned with the previous page."""

    limit: int = 50
    last: str = ""
    order: SortOrder = SortOrder.DESCENDING


@dataclass(frozen=True)
class StoredMetadata:
    """The capture metadata of a stored row, as queries report it."""

    organization_id: str
    location_id: str
    robot_name: str
    robot_id: str
    part_name: str
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    method_parameters: tuple[tuple[str, AnyValue], ...]
    tags: tuple[str, ...]
    mime_type: str


@dataclass(frozen=True)
class TabularRow:
    """A stored tabular reading with its metadata."""

    id: str
    metadata: StoredMetadata
    time_requested_ns: int
    time_received_ns: int
    time_synced_ns: int
    data: JsonObject


@dataclass(frozen=True)
class BinaryRow:
    """A stored binary item with its metadata (bytes are read separately)."""

    binary_data_id: str
    metadata: StoredMetadata
    blob: BlobRef
    time_requested_ns: int
    time_received_ns: int
    time_synced_ns: int
    file_name: str
    file_ext: str
    dataset_ids: tuple[str, ...]
    annotations: JsonObject | None
    file_id: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and ``last``, the cursor after its last row.

    Paging ends with an empty page (whose ``last`` is ""), as Viam's SDK expects.
    """

    rows: tuple[T, ...]
    last: str = ""
    total_size_bytes: int = 0

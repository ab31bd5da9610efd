"""Messages between collectors, the writer and the sync actor (one class per kind).

All are treated as immutable once sent. ``CaptureMsg`` alone is not a frozen
dataclass: one is built per reading, and a frozen dataclass's ``__init__`` (an
``object.__setattr__`` call per field) cost 2.5 µs against 0.5 µs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from pathlib import Path

    import trio

    from actors.codec import JsonObject

StreamKey = tuple[str, str, str]
"""(api, resource name, method): one collector's identity."""


@final
@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Where and how one collector's readings are written.

    A reading whose spec differs from the open file's spec starts a new file, so
    a reconfigure that changes the header (tags, params) or the directory never
    mixes two configurations in one file.
    """

    key: StreamKey
    directory: Path
    header: bytes  # framed DataCaptureMetadata
    binary: bool
    max_file_bytes: int
    max_file_age_s: float
    buffer_bytes: int


@dataclass
class InflightGauge:
    """Readings a collector has queued that the writer has not yet written.

    Bounded by the method's ``capture_queue_size``: a collector drops (and counts)
    a reading rather than exceed it, so memory never grows without limit.
    """

    capacity: int
    inflight: int = 0
    written: int = 0


@final
@dataclass(slots=True, eq=False)
class CaptureMsg:
    """One reading on its way to disk; never changed after it is built.

    Tabular readings carry ``data``; binary readings carry ``payload`` and
    ``mime_type``. ``annotations`` is a serialized ``Annotations`` message.
    Not frozen, for speed (module docstring); compared by identity.
    """

    stream: StreamSpec
    gauge: InflightGauge = field(compare=False, repr=False)
    time_requested_ns: int
    time_received_ns: int
    data: JsonObject | None = None
    payload: bytes | None = None
    mime_type: str = ""
    annotations: bytes = b""


@final
@dataclass(frozen=True, slots=True)
class RotateRequest:
    """Asks the writer to finish open tabular files (all, or those of ``keys``).

    ``done`` is set once every file open at the request is a durable ``.capture``.
    The sync actor sends one before each pass.
    """

    done: trio.Event = field(compare=False)
    keys: frozenset[StreamKey] | None = None


@final
@dataclass(slots=True, eq=False)
class CaptureBatch:
    """The readings of one cohort tick, sent to the writer as one message.

    A cohort captures every member in one synchronous pass; one mailbox send per
    tick instead of one per reading spares the event loop and the writer a channel
    operation each (docs/performance.md, "Late session").
    """

    msgs: list[CaptureMsg]


WriterMsg = CaptureMsg | CaptureBatch | RotateRequest

"""Blocking capture-file reads for ``ViamUploader``: headers, readings, payload bytes.

Kept apart from the uploader (``actors.adapters.viam_uploader``), which sends the
RPCs, so the parsing of capture files stays in one place. Every function here
blocks and runs on the ``BlockingRunner``; a file that cannot be parsed raises
``CaptureFileError`` with its byte offset, which the uploader maps to a
``PermanentError``. Re-exported from ``actors.adapters.viam_uploader``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, final

from actors.codec import (
    CaptureFileReader,
    CorruptCaptureFile,
    TruncatedCaptureFile,
    WireError,
    decode_sensor_data,
    decode_varint,
    encode_varint,
)
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import FileSystem

# A SensorMetadata holds two timestamps and annotations; more is a corrupt length.
_MAX_SENSOR_METADATA = 1 << 20
_TAG_METADATA, _TAG_STRUCT, _TAG_BINARY = 0x0A, 0x12, 0x1A


@final
@dataclass(frozen=True, slots=True)
class BinaryReading:
    """Where one binary reading's payload is in its capture file, and its metadata."""

    offset: int  # of the record's length prefix
    payload_offset: int
    payload_size: int
    metadata: datasync.SensorMetadata


def read_header(fs: FileSystem, path: Path) -> tuple[datasync.DataCaptureMetadata, int]:
    """A capture file's header and the offset where its records start."""
    with CaptureFileReader(path, fs=fs) as reader:
        return reader.header, reader.header_end


def read_tabular(fs: FileSystem, path: Path) -> list[datasync.SensorData]:
    """Every reading of a tabular capture file, checked strictly.

    Raises:
        CaptureFileError: broken framing, a record that is not a SensorData,
            or a record without a struct (with its offset).
    """
    readings: list[datasync.SensorData] = []
    with CaptureFileReader(path, fs=fs) as reader:
        for raw in reader.raw_records():
            try:
                record = decode_sensor_data(raw.body)
            except WireError as exc:
                raise CorruptCaptureFile(path, raw.offset, f"not a SensorData: {exc}") from None
            if record.struct is None:
                raise CorruptCaptureFile(path, raw.offset, "a tabular reading without a struct")
            readings.append(datasync.SensorData.parse(raw.body))
    return readings


def _varint(f: BinaryIO, path: Path, pos: int, what: str) -> tuple[int, int]:
    """The varint at ``pos`` and the offset after it."""
    f.seek(pos)
    head = f.read(10)
    try:
        value, used = decode_varint(head, 0)
    except WireError as exc:
        raise TruncatedCaptureFile(path, pos, f"{what}: {exc}") from None
    return value, pos + used


def _binary_reading(f: BinaryIO, path: Path, pos: int, size: int) -> tuple[BinaryReading, int]:
    """The reading whose record starts at ``pos``, and where the next record starts."""
    length, body = _varint(f, path, pos, "record length")
    end = body + length
    if end > size:
        raise TruncatedCaptureFile(path, pos, f"record of {length} bytes runs past the end")
    metadata = b""
    payload: tuple[int, int] | None = None
    at = body
    while at < end:
        tag, value_len_at = _varint(f, path, at, "field tag")
        if tag & 7 != 2:
            raise CorruptCaptureFile(path, at, f"unexpected SensorData field tag {tag}")
        n, value_at = _varint(f, path, value_len_at, "field length")
        if value_at + n > end:
            raise CorruptCaptureFile(path, at, "field runs past the end of its record")
        if tag == _TAG_METADATA:
            if n > _MAX_SENSOR_METADATA:
                raise CorruptCaptureFile(path, at, f"SensorMetadata of {n} bytes")
            f.seek(value_at)
            metadata = f.read(n)
        elif tag == _TAG_BINARY:
            payload = (value_at, n)
        elif tag == _TAG_STRUCT:
            raise CorruptCaptureFile(path, at, "a binary capture file holds a struct")
        at = value_at + n
    if payload is None:
        raise CorruptCaptureFile(path, pos, "record has no binary payload")
    try:  # the codec's strict decoder, then betterproto2 for the message to send
        decode_sensor_data(bytes([_TAG_METADATA]) + encode_varint(len(metadata)) + metadata)
        parsed = datasync.SensorMetadata.parse(metadata)
    except Exception as exc:  # WireError, or betterproto2's assorted errors on bad input
        raise CorruptCaptureFile(path, pos, f"unreadable SensorMetadata: {exc}") from None
    return BinaryReading(pos, payload[0], payload[1], parsed), end


def locate_binary(fs: FileSystem, path: Path, start: int) -> list[BinaryReading]:
    """Each binary reading after the header (at ``start``), without reading payloads.

    Raises:
        CaptureFileError: broken framing, a struct or no payload (with its offset).
    """
    found: list[BinaryReading] = []
    with fs.open_read(path) as f:
        size = fs.size(path)
        pos = start
        while pos < size:
            reading, pos = _binary_reading(f, path, pos, size)
            found.append(reading)
    return found


def read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
    f.seek(offset)
    return f.read(size)

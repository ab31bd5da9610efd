"""Binary capture records located on disk, never loaded whole.

A binary capture file holds one (or a few) large payloads: a camera frame, a
point cloud, a video. Reading a record into memory costs its size in RAM — the
reference's sync once read whole files and spiked memory on large binaries
(spec §7, item 3). This module finds each record's payload by its offset and
copies it into a spool file in 1 MiB blocks, hashing as it goes, so the blob
store can adopt the spool file by rename. Memory stays bounded by the block size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from actors.codec import CaptureFileError, decode_sensor_data, encode_varint

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from actors.codec import SensorRecord

_BLOCK = 1 << 20
# SensorMetadata (two timestamps and annotations) is small; cap what we read of it.
_MAX_METADATA = 1 << 20


@dataclass(frozen=True)
class BinaryLocation:
    """Where one record's payload is, and the record's metadata."""

    offset: int  # of the record's length prefix
    payload_offset: int
    payload_size: int
    record: SensorRecord  # metadata only: ``binary`` is None here


def _varint(f: BinaryIO, path: Path, what: str) -> int:
    result = shift = 0
    start = f.tell()
    for _ in range(10):
        byte = f.read(1)
        if not byte:
            raise CaptureFileError(path, start, f"truncated varint in {what}")
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
        shift += 7
    raise CaptureFileError(path, start, f"varint longer than 10 bytes in {what}")


def locate_binary_records(
    f: BinaryIO, path: Path, start: int, size: int
) -> Iterator[BinaryLocation]:
    """Yields each binary record after the header (``start``), in order.

    Raises:
        CaptureFileError: the framing is broken, a record carries no binary
            payload, or a field runs past its record (offset included).
    """
    pos = start
    while pos < size:
        f.seek(pos)
        length = _varint(f, path, "record length")
        body = f.tell()
        end = body + length
        if end > size:
            raise CaptureFileError(path, pos, "record runs past the end of the file")
        metadata = b""
        payload: tuple[int, int] | None = None
        while f.tell() < end:
            field_at = f.tell()
            tag = _varint(f, path, "record field tag")
            if tag & 7 != 2:
                raise CaptureFileError(path, field_at, f"unexpected SensorData field tag {tag}")
            n = _varint(f, path, "record field length")
            value_at = f.tell()
            if value_at + n > end:
                raise CaptureFileError(path, field_at, "field runs past the end of its record")
            if tag == 0x0A:
                if n > _MAX_METADATA:
                    raise CaptureFileError(path, field_at, f"SensorMetadata of {n} bytes")
                metadata = f.read(n)
            elif tag == 0x1A:
                payload = (value_at, n)
            elif tag == 0x12:
                raise CaptureFileError(path, field_at, "a binary capture file holds a struct")
            f.seek(value_at + n)
        if payload is None:
            raise CaptureFileError(path, pos, "record has no binary payload")
        try:
            record = decode_sensor_data(b"\x0a" + encode_varint(len(metadata)) + metadata)
        except Exception as exc:  # WireError and friends: a corrupt SensorMetadata
            raise CaptureFileError(path, pos, f"unreadable SensorMetadata: {exc}") from None
        yield BinaryLocation(pos, payload[0], payload[1], record)
        pos = end


def copy_payload(src: BinaryIO, location: BinaryLocation, dst: Path) -> str:
    """Copies a payload to a new file ``dst`` (fsynced); returns its SHA-256 hex."""
    digest = hashlib.sha256()
    src.seek(location.payload_offset)
    remaining = location.payload_size
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while remaining:
            block = src.read(min(_BLOCK, remaining))
            if not block:
                raise CaptureFileError(dst, location.payload_offset, "payload truncated")
            digest.update(block)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
            remaining -= len(block)
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest()

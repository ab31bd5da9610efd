"""Capture files for the CLI tests, written with the codec, and a strict JSON Lines reader."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from actors.codec import CaptureFileWriter, RecordEncoder, encode_header
from protos.gen.google import protobuf as pb
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.codec import JsonObject

# 2023-11-14T22:13:20.123456789Z
T0 = 1_700_000_000_123_456_789
T0_TEXT = "2023-11-14T22:13:20.123456789Z"
MS = 1_000_000


def _reject_constant(name: str) -> object:
    raise ValueError(f"not strict JSON: {name}")


def parse_lines(text: str) -> list[dict[str, object]]:
    """Each line as strict JSON (NaN/Infinity tokens rejected)."""
    return [json.loads(line, parse_constant=_reject_constant) for line in text.splitlines()]


def tabular_header(api: str = "rdk:component:sensor", name: str = "env", method: str = "Readings"):
    return datasync.DataCaptureMetadata(
        component_type=api,
        component_name=name,
        method_name=method,
        type=datasync.DataType.TABULAR_SENSOR,
        file_extension=".dat",
        tags=["t1", "t2"],
    )


def camera_header(name: str = "cam", mime: str = "image/jpeg", ext: str = ".jpeg"):
    value = bytes(pb.Value(string_value=mime))
    return datasync.DataCaptureMetadata(
        component_type="rdk:component:camera",
        component_name=name,
        method_name="ReadImage",
        type=datasync.DataType.BINARY_SENSOR,
        method_parameters={
            "mime_type": pb.Any(type_url="type.googleapis.com/google.protobuf.Value", value=value)
        },
        file_extension=ext,
        tags=["cams"],
        mime_type=mime,
    )


def write_tabular(
    directory: Path,
    readings: Sequence[JsonObject],
    *,
    header: datasync.DataCaptureMetadata | None = None,
    wall_ns: int = T0,
    annotations: bytes = b"",
) -> Path:
    """A finished tabular file; reading i is requested at T0 + i ms, received 1 ms later."""
    writer = CaptureFileWriter.create(directory, wall_ns, encode_header(header or tabular_header()))
    encoder = RecordEncoder()
    for i, reading in enumerate(readings):
        requested = T0 + i * MS
        writer.append(encoder.tabular(requested, requested + MS, reading, annotations))
    return writer.finish()


def write_binary(
    directory: Path,
    payload: bytes,
    *,
    header: datasync.DataCaptureMetadata | None = None,
    wall_ns: int = T0,
) -> Path:
    """A finished binary file with one reading."""
    writer = CaptureFileWriter.create(directory, wall_ns, encode_header(header or camera_header()))
    writer.append_parts(RecordEncoder().binary_prefix(T0, T0 + MS, len(payload)), payload)
    return writer.finish()

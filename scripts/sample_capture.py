"""Writes a small, realistic set of capture files, as Viam's data manager would.

Until Ferry's capture runtime exists, ``make run`` uses this to have something for
``ferry inspect`` to read:

- ``rdk:component:sensor`` ``env`` ``Readings``: one tabular file of 100 readings,
  each wrapped as ``{"readings": {...}}`` (spec §2.3);
- ``rdk:component:arm`` ``arm`` ``JointPositions``: one tabular file of 20 readings;
- ``rdk:component:camera`` ``cam`` ``ReadImage``: two binary files, one tiny JPEG each.

Example::

    python scripts/sample_capture.py --out ~/.ferry/sample-capture
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, final

from PIL import Image

from actors.codec import (
    CaptureFileWriter,
    RecordEncoder,
    collector_dir,
    data_type_for,
    encode_header,
    file_extension_for,
)
from protos.gen.google import protobuf as pb
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.codec import JsonObject

DEFAULT_OUT = Path("~/.ferry/sample-capture")
TAGS = ("sample",)
SENSOR_READINGS = 100
ARM_READINGS = 20
_MS = 1_000_000
_VALUE_URL = "type.googleapis.com/google.protobuf.Value"


@final
@dataclass(frozen=True, slots=True)
class Written:
    """One capture file this script wrote."""

    path: Path
    records: int
    size: int


def header(api: str, name: str, method: str, params: dict[str, str] | None = None) -> bytes:
    """The framed header Viam's BuildCaptureMetadata would write for a collector."""
    params = params or {}
    binary = data_type_for(method) == datasync.DataType.BINARY_SENSOR
    meta = datasync.DataCaptureMetadata(
        component_type=api,
        component_name=name,
        method_name=method,
        type=data_type_for(method),
        # Viam wraps each additional_params value as a google.protobuf.Value in an Any.
        method_parameters={
            key: pb.Any(type_url=_VALUE_URL, value=bytes(pb.Value(string_value=value)))
            for key, value in params.items()
        },
        file_extension=file_extension_for(method, dict(params)),
        tags=list(TAGS),
        mime_type=params.get("mime_type", "") if binary else "",
    )
    return encode_header(meta)


def sensor_reading(i: int) -> JsonObject:
    """A plausible environment sensor reading, wrapped as Viam stores ``Readings``."""
    return {
        "readings": {
            "temperature_c": round(21.5 + 0.8 * math.sin(i / 10), 3),
            "humidity_pct": round(40 + 5 * math.cos(i / 15), 3),
            "pressure_hpa": round(1013.25 + 0.1 * (i % 7), 3),
            "ok": True,
        }
    }


def arm_reading(i: int) -> JsonObject:
    """A ``JointPositionsResponse`` as a Struct: six joint angles in degrees."""
    return {"positions": {"values": [round(10 * j + math.sin(i / 5 + j), 4) for j in range(6)]}}


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    """A tiny, valid JPEG of one color."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def write_tabular(
    directory: Path, head: bytes, readings: Sequence[JsonObject], start_ns: int, period_ns: int
) -> Written:
    """One tabular file: a reading every ``period_ns``, each received 2 ms after its request."""
    writer = CaptureFileWriter.create(directory, start_ns, head)
    encoder = RecordEncoder()
    for i, reading in enumerate(readings):
        requested = start_ns + i * period_ns
        writer.append(encoder.tabular(requested, requested + 2 * _MS, reading))
    path = writer.finish()
    return Written(path, len(readings), path.stat().st_size)


def write_binary(directory: Path, head: bytes, payload: bytes, requested_ns: int) -> Written:
    """One binary file: the header and exactly one reading (spec §2.4)."""
    writer = CaptureFileWriter.create(directory, requested_ns, head)
    prefix = RecordEncoder().binary_prefix(requested_ns, requested_ns + 15 * _MS, len(payload))
    writer.append_parts(prefix, payload)
    path = writer.finish()
    return Written(path, 1, path.stat().st_size)


def write_samples(out: Path, now_ns: int) -> list[Written]:
    """Writes the sample set under ``out`` (collector layout) and returns what it wrote."""
    start = now_ns - 10_000 * _MS  # the last ten seconds
    sensor = collector_dir(out, "rdk:component:sensor", "env", "Readings")
    arm = collector_dir(out, "rdk:component:arm", "arm", "JointPositions")
    cam = collector_dir(out, "rdk:component:camera", "cam", "ReadImage")
    cam_head = header("rdk:component:camera", "cam", "ReadImage", {"mime_type": "image/jpeg"})
    return [
        write_tabular(
            sensor,
            header("rdk:component:sensor", "env", "Readings"),
            [sensor_reading(i) for i in range(SENSOR_READINGS)],
            start,
            100 * _MS,
        ),
        write_tabular(
            arm,
            header("rdk:component:arm", "arm", "JointPositions"),
            [arm_reading(i) for i in range(ARM_READINGS)],
            start,
            500 * _MS,
        ),
        write_binary(cam, cam_head, jpeg((200, 40, 40)), now_ns - 2_000 * _MS),
        write_binary(cam, cam_head, jpeg((40, 40, 200)), now_ns - 1_000 * _MS),
    ]


def main(argv: list[str] | None = None) -> int:
    """Parses ``--out``, writes the samples and prints one line per file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"capture directory (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    out: Path = args.out.expanduser()
    for written in write_samples(out, time.time_ns()):
        print(f"wrote {written.path} ({written.records} records, {written.size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

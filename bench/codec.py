"""Capture-file codec throughput: tabular readings/s and binary MB/s, reading to file.

Measures the real path a capture takes on the robot, in one process on one core:
a JSON-like reading (or a 1 MiB payload) is encoded by ``RecordEncoder`` and
appended with ``CaptureFileWriter``, the file is fsynced and finished. The
betterproto2 generated classes are timed on the same reading for reference.

The decode rows time the cloud's ingest path the other way round: a finished
file of readings read back with ``CaptureFileReader.records()`` (file reading,
framing and ``SensorData``/``Struct`` decoding; the file is written untimed).

Run: python -m bench.codec [--readings N] [--binary N] [--decode N] [--only decode]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from actors.codec import (
    CaptureFileReader,
    CaptureFileWriter,
    RecordEncoder,
    collector_dir,
    encode_header,
)
from protos.gen.google.protobuf import Struct
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = 1_763_000_000_000_000_000


def _reading(i: int) -> dict[str, object]:
    # What a typical sensor Readings call returns, wrapped as Viam wraps it.
    return {
        "readings": {"temperature_c": 21.5 + (i % 7) * 0.1, "humidity": 40.0 + (i % 11), "ok": True}
    }


def _typical_reading(i: int) -> dict[str, object]:
    # An IMU-like reading: a nested Struct of numbers, one of them a counter.
    return {"readings": {"x": 0.01 * (i % 100), "y": -9.81, "z": 0.5, "seq": i}}


def _mixed_reading(i: int) -> dict[str, object]:
    # Strings, bools, a list and a nested object: the other Value kinds.
    return {
        "readings": {
            "state": "moving" if i % 3 else "idle",
            "ok": i % 2 == 0,
            "joints": [0.1 * (i % 10), -1.57, 3.14, 0.0, 2.5, -0.5],
            "pose": {"frame": "world", "x": float(i), "y": 2.0, "th": 0.25},
        }
    }


def _header(method: str, dtype: datasync.DataType, ext: str) -> bytes:
    return encode_header(
        datasync.DataCaptureMetadata(
            component_type="rdk:component:sensor",
            component_name="bench",
            method_name=method,
            type=dtype,
            file_extension=ext,
        )
    )


def tabular(root: Path, n: int) -> float:
    """Readings/s from reading dict to a finished, fsynced .capture file."""
    readings = [_reading(i) for i in range(1000)]
    directory = collector_dir(root, "rdk:component:sensor", "bench", "Readings")
    start = time.perf_counter()
    enc = RecordEncoder()
    writer = CaptureFileWriter.create(
        directory, time.time_ns(), _header("Readings", datasync.DataType.TABULAR_SENSOR, ".dat")
    )
    for i in range(n):
        t = T0 + i * 10_000_000
        writer.append(enc.tabular(t, t + 1_000_000, readings[i % 1000]))
    writer.finish()
    return n / (time.perf_counter() - start)


def decode(root: Path, n: int, make: Callable[[int], dict[str, object]]) -> float:
    """Readings/s reading a file of ``n`` readings back with ``CaptureFileReader.records()``."""
    readings = [make(i) for i in range(1000)]
    directory = collector_dir(root, "rdk:component:sensor", "bench", "Readings")
    enc = RecordEncoder()
    writer = CaptureFileWriter.create(
        directory, time.time_ns(), _header("Readings", datasync.DataType.TABULAR_SENSOR, ".dat")
    )
    for i in range(n):
        t = T0 + i * 10_000_000
        writer.append(enc.tabular(t, t + 1_000_000, readings[i % 1000]))
    path = writer.finish()
    start = time.perf_counter()
    with CaptureFileReader(path) as reader:
        count = sum(1 for _ in reader.records())
    elapsed = time.perf_counter() - start
    assert count == n, (count, n)
    return n / elapsed


def betterproto_tabular(n: int) -> float:
    """Readings/s encoding the same reading with the generated betterproto2 classes."""
    stamp = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    for i in range(n):
        msg = datasync.SensorData(
            metadata=datasync.SensorMetadata(time_requested=stamp, time_received=stamp),
            struct=Struct.from_dict(_reading(i)),
        )
        bytes(msg)
    return n / (time.perf_counter() - start)


def binary(root: Path, n: int, size: int = 1 << 20, *, fsync: bool = True) -> float:
    """MB/s writing 1 MiB binary readings, one finished file each (as Viam does)."""
    payload = os.urandom(size)
    directory = collector_dir(root, "rdk:component:camera", "bench", "ReadImage")
    header = _header("ReadImage", datasync.DataType.BINARY_SENSOR, ".jpeg")
    enc = RecordEncoder()
    start = time.perf_counter()
    for i in range(n):
        t = T0 + i * 10_000_000
        writer = CaptureFileWriter.create(directory, t, header)
        writer.append_parts(enc.binary_prefix(t, t, len(payload)), payload)
        if fsync:
            writer.finish()
        else:
            writer.flush()
            writer.close_unfinished()
    return n * size / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--binary", type=int, default=200)
    parser.add_argument("--decode", type=int, default=50_000, help="readings per decode row")
    parser.add_argument(
        "--only", choices=["capture", "decode"], default=None, help="run only these rows"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        rows: list[tuple[str, str, str, str]] = []
        if args.only in (None, "capture"):
            rows += [
                (
                    "tabular capture, reading -> finished file",
                    f"{tabular(root, args.readings):,.0f}",
                    "readings/s",
                    ">= 100,000",
                ),
                (
                    "tabular encode, betterproto2 reference",
                    f"{betterproto_tabular(5000):,.0f}",
                    "readings/s",
                    "-",
                ),
                (
                    "binary 1 MiB, fsync + finish per file",
                    f"{binary(root, args.binary):,.1f}",
                    "MB/s",
                    "-",
                ),
                (
                    "binary 1 MiB, no fsync",
                    f"{binary(root, args.binary, fsync=False):,.1f}",
                    "MB/s",
                    "-",
                ),
            ]
        if args.only in (None, "decode"):
            rows += [
                (
                    "decode, file -> records (numbers)",
                    f"{decode(root, args.decode, _typical_reading):,.0f}",
                    "readings/s",
                    ">= 100,000",
                ),
                (
                    "decode, file -> records (str/bool/list)",
                    f"{decode(root, args.decode, _mixed_reading):,.0f}",
                    "readings/s",
                    "-",
                ),
            ]
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'metric':<44} {'value':>12} {'unit':<11} goal")
    for metric, value, unit, goal in rows:
        print(f"{metric:<44} {value:>12} {unit:<11} {goal}")


if __name__ == "__main__":
    main()

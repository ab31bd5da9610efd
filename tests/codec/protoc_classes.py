"""An independent capture-file reader and writer, built on ``protoc --python_out`` classes.

Nothing here imports ``actors.codec``: framing uses google.protobuf's own varint
helpers and messages use the classes protoc generates from ``protos/src`` at test
time, so the interop tests compare Ferry against Google's implementation rather
than against itself.
"""

from __future__ import annotations

import importlib
import importlib.resources
import math
import struct
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.internal.decoder import _DecodeVarint32
from google.protobuf.internal.encoder import _VarintBytes

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PROTO_SRC = ROOT / "protos" / "src"
PROTO_FILES = ("viam/app/datasync/v1/data_sync.proto", "viam/app/data/v1/data.proto")
# protoc names the generated package after the proto path: a top-level ``viam``.
_TOP = "viam"


@dataclass(frozen=True)
class ProtocClasses:
    """The protoc-generated modules the tests need, plus the well-known types."""

    datasync: ModuleType  # viam.app.datasync.v1.data_sync_pb2
    data: ModuleType  # viam.app.data.v1.data_pb2
    struct_pb2: ModuleType = struct_pb2
    timestamp_pb2: ModuleType = timestamp_pb2
    any_pb2: ModuleType = any_pb2
    wrappers_pb2: ModuleType = wrappers_pb2


def generate(out_dir: Path) -> ProtocClasses:
    """Runs protoc on the repo's protos into ``out_dir`` and imports the result.

    The generated top-level package is called ``viam``. It is imported with
    ``out_dir`` first on ``sys.path`` and any ``viam`` modules already loaded set
    aside; afterwards ``sys.path`` and ``sys.modules`` are put back as they were,
    so the classes stay usable without shadowing anything else called ``viam``.
    """
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_SRC}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            *PROTO_FILES,
        ],
        check=True,
        capture_output=True,
    )
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if _is_top(name)}
    sys.path.insert(0, str(out_dir))
    importlib.invalidate_caches()
    try:
        datasync = importlib.import_module("viam.app.datasync.v1.data_sync_pb2")
        data = importlib.import_module("viam.app.data.v1.data_pb2")
    finally:
        sys.path.remove(str(out_dir))
        for name in [name for name in sys.modules if _is_top(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        importlib.invalidate_caches()
    return ProtocClasses(datasync=datasync, data=data)


def _is_top(name: str) -> bool:
    return name == _TOP or name.startswith(_TOP + ".")


def split_delimited(data: bytes) -> list[bytes]:
    """Splits varint-length-delimited messages (pbutil ReadDelimited), strictly.

    Raises:
        AssertionError: the bytes do not end exactly at a message boundary.
    """
    messages = []
    pos = 0
    while pos < len(data):
        length, pos = _DecodeVarint32(data, pos)
        assert pos + length <= len(data), f"message at {pos} runs past the end"
        messages.append(data[pos : pos + length])
        pos += length
    return messages


def join_delimited(messages: list[bytes]) -> bytes:
    """Frames serialized messages as pbutil WriteDelimited does."""
    return b"".join(_VarintBytes(len(m)) + m for m in messages)


def read_capture(protoc: ProtocClasses, data: bytes) -> tuple[Any, list[Any]]:
    """Parses a whole capture file: ``(DataCaptureMetadata, [SensorData, ...])``."""
    header, *records = split_delimited(data)
    return (
        protoc.datasync.DataCaptureMetadata.FromString(header),
        [protoc.datasync.SensorData.FromString(r) for r in records],
    )


def struct_to_python(message: Any) -> dict[str, Any]:
    """A protoc ``Struct`` as plain Python, through its own field accessors.

    (``json_format.MessageToDict`` refuses NaN and infinities, which a Struct
    holds fine on the wire.)
    """
    return {key: value_to_python(value) for key, value in message.fields.items()}


def value_to_python(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "null_value":
        return None
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    raise AssertionError(f"Value with no kind set: {value!r}")


def canon(value: Any) -> Any:
    """A comparable form of a JSON-like value, as a Struct stores it.

    Numbers become doubles compared bit for bit (so ``-0.0 != 0.0``), every NaN
    is one NaN, tuples are lists, and bools stay distinct from numbers.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        number = float(value)
        return ("nan",) if math.isnan(number) else ("num", struct.pack("<d", number))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, Mapping):
        return ("obj", {key: canon(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return ("list", [canon(item) for item in value])
    raise TypeError(f"not JSON-like: {value!r}")


def timestamp_ns(message: Any) -> int:
    """A protoc Timestamp as integer nanoseconds (exact, unlike float seconds)."""
    return int(message.seconds) * 1_000_000_000 + int(message.nanos)

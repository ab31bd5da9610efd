"""Hypothesis strategies for capture-file contents: Struct values, payloads, headers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import strategies as st

NS = 1_000_000_000
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_NS = -62_135_596_800 * NS
MAX_TIMESTAMP_NS = 253_402_300_799 * NS + NS - 1

# Struct numbers are doubles: integers beyond 2**53 lose precision (by design).
SAFE_INT = 2**53

keys = st.text(max_size=12) | st.sampled_from(["", "readings", "x", "é", "\U0001f916", "a.b"])
strings = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0x10000), max_size=8),  # astral plane only
    st.sampled_from(["", "\x00", "\U0010ffff", "\ufeff"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE_INT, SAFE_INT),
    st.floats(),  # includes -0.0, ±inf and NaN
    strings,
)


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


# Nesting stays well under the 100-message recursion limit of protobuf's parsers.
json_values = st.recursive(scalars, _containers, max_leaves=20)
json_objects = st.dictionaries(keys, json_values, max_size=6)
readings_objects = st.builds(lambda body: {"readings": body}, json_objects) | json_objects


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


small_payloads = st.binary(max_size=64)
large_payloads = st.builds(_random_bytes, st.integers(0, 384 * 1024), st.integers(0, 2**32))
payloads = small_payloads | large_payloads

timestamps_ns = st.one_of(
    st.integers(MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS),
    st.integers(-3 * NS, 3 * NS),  # around the epoch, where seconds are -1, 0, 1
    st.integers(1_500_000_000 * NS, 2_100_000_000 * NS),  # now-ish
)

_unit = st.floats(0, 1)


@dataclass(frozen=True)
class BoxSpec:
    id: str
    label: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    confidence: float | None


@dataclass(frozen=True)
class ClassificationSpec:
    label: str
    confidence: float | None
    id: str


@dataclass(frozen=True)
class AnnotationsSpec:
    boxes: tuple[BoxSpec, ...] = ()
    classifications: tuple[ClassificationSpec, ...] = ()


@dataclass(frozen=True)
class ReadingSpec:
    """One SensorData to write: exactly one of ``struct`` and ``binary`` is set."""

    requested_ns: int
    received_ns: int
    struct: dict[str, object] | None = None
    binary: bytes | None = None
    annotations: AnnotationsSpec = field(default_factory=AnnotationsSpec)


@dataclass(frozen=True)
class HeaderSpec:
    component_type: str
    component_name: str
    method_name: str
    data_type: int  # DataType enum value
    params: dict[str, object]  # additional_params: each packed as Any(google.protobuf.Value)
    file_extension: str
    tags: tuple[str, ...]
    mime_type: str


annotations = st.builds(
    AnnotationsSpec,
    st.lists(
        st.builds(BoxSpec, strings, strings, _unit, _unit, _unit, _unit, st.none() | _unit),
        max_size=3,
    ).map(tuple),
    st.lists(st.builds(ClassificationSpec, strings, st.none() | _unit, strings), max_size=3).map(
        tuple
    ),
)
tabular_readings = st.builds(
    ReadingSpec,
    timestamps_ns,
    timestamps_ns,
    readings_objects,
    st.none(),
    st.just(AnnotationsSpec()),
)
binary_readings = st.builds(
    ReadingSpec, timestamps_ns, timestamps_ns, st.none(), payloads, annotations
)
small_binary_readings = st.builds(
    ReadingSpec, timestamps_ns, timestamps_ns, st.none(), small_payloads, annotations
)
readings = tabular_readings | binary_readings
small_readings = (
    st.builds(ReadingSpec, timestamps_ns, timestamps_ns, st.dictionaries(keys, scalars, max_size=3))
    | small_binary_readings
)

headers = st.builds(
    HeaderSpec,
    st.sampled_from(["rdk:component:sensor", "rdk:component:camera", "rdk:service:vision"])
    | strings,
    strings,
    st.sampled_from(["Readings", "ReadImage", "GetImages", "DoCommand"]) | strings,
    st.sampled_from([0, 1, 2, 3]),
    st.dictionaries(keys, json_values, max_size=3),
    st.sampled_from(["", ".dat", ".jpeg", ".pcd"]),
    st.lists(strings, max_size=4).map(tuple),
    st.sampled_from(["", "image/jpeg", "image/png"]) | strings,
)


# Edits applied to valid bytes: overwrite, insert or delete a byte, or cut the end.
edits = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete", "cut"]),
        st.integers(0, 1 << 16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=3,
)


def mutate(data: bytes, changes: list[tuple[str, int, int]]) -> bytes:
    """``data`` with each of ``changes`` (drawn from ``edits``) applied in turn."""
    buf = bytearray(data)
    for kind, index, byte in changes:
        i = index % (len(buf) + 1)
        if kind == "insert":
            buf.insert(i, byte)
        elif not buf:
            continue
        elif kind == "set":
            buf[i % len(buf)] = byte
        elif kind == "delete":
            del buf[i % len(buf)]
        else:
            del buf[i:]
    return bytes(buf)

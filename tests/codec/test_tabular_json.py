"""``TabularTranscoder`` gives exactly the general path's rows, learned shape or not.

The general path is decode (``decode_sensor_data``) then encode (the cloud's
``reading_json``). The transcoder learns a Struct's shape from one record and
then fills in numbers; these tests pin down that whatever it is fed (records
Ferry writes, same-shaped records with other numbers, mutated bytes, shapes that
share a length) its row or error is the general path's, and that a learned
shape really does skip the general path.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.codec import (
    RecordEncoder,
    StructEncoder,
    TabularTranscoder,
    WireError,
    _tabular_json,
    decode_sensor_data,
    decode_varint,
)
from cloud.reading_json import reading_json
from tests.codec import strategies as cst

if TYPE_CHECKING:
    from collections.abc import Callable

FAST = settings(max_examples=100, deadline=None)


def encode(struct_value: Any) -> str:
    return reading_json(struct_value, "reading")


def general(body: bytes) -> tuple[int, int, str] | None:
    """The row the general path gives: decode every field, then encode the dicts."""
    record = decode_sensor_data(body)
    if record.struct is None:
        return None
    return record.time_requested_ns, record.time_received_ns, encode(record.struct)


def outcome(row: Callable[[bytes], Any], body: bytes) -> Any:
    """The row, or the error's type and message."""
    try:
        return ("ok", row(body))
    except WireError as exc:
        return ("error", type(exc), str(exc))


def body_of(requested: int, received: int, obj: Any) -> bytes:
    framed = RecordEncoder().tabular(requested, received, obj)
    length, pos = decode_varint(framed, 0)
    assert pos + length == len(framed)
    return framed[pos:]


class Counting:
    """``encode``, counting its calls (each is a record that took the general path)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, struct_value: Any) -> str:
        self.calls += 1
        return encode(struct_value)


def renumbered(value: Any, numbers: list[float]) -> Any:
    """``value`` with each float replaced by the next of ``numbers`` (cycled): the
    same shape, other numbers."""
    if isinstance(value, float):
        value = numbers[0]
        numbers.append(numbers.pop(0))
        return value
    if isinstance(value, dict):
        return {k: renumbered(v, numbers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [renumbered(v, numbers) for v in value]
    return value


_any_double = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])


@FAST
@given(obj=cst.readings_objects, times=st.tuples(cst.timestamps_ns, cst.timestamps_ns))
def test_rows_equal_the_general_path_on_first_sight_and_once_learned(obj, times):
    rows = TabularTranscoder(encode)
    body = body_of(times[0], times[1], obj)
    expected = general(body)
    assert rows.row(body) == expected  # learns
    assert rows.row(body) == expected  # from the learned shape


@FAST
@given(
    obj=cst.readings_objects,
    numbers=st.lists(_any_double, min_size=1, max_size=8),
    times=st.tuples(cst.timestamps_ns, cst.timestamps_ns),
)
# The sum of the numbers overflows; and a NaN.
@example(obj={"readings": {"x": 1.0, "y": 2.0}}, numbers=[1e308, 1e308], times=(1, 2))
@example(obj={"readings": {"x": 1.0}}, numbers=[math.nan], times=(1, 2))
def test_a_learned_shape_with_other_numbers_gives_the_general_paths_row(obj, numbers, times):
    rows = TabularTranscoder(encode)
    rows.row(body_of(0, 0, obj))
    other = body_of(times[0], times[1], renumbered(obj, list(numbers)))
    assert rows.row(other) == general(other)


def test_a_learned_shape_skips_the_general_path():
    counting = Counting()
    rows = TabularTranscoder(counting)
    for i in range(100):
        reading = {"readings": {"x": 0.5 * i, "ok": True, "frame": "base", "v": [1.0, i / 3]}}
        body = body_of(i, i + 1, reading)
        assert rows.row(body) == general(body)
    assert counting.calls == 1  # the record it learned from


def test_shapes_with_multi_byte_lengths_are_learned():
    counting = Counting()
    rows = TabularTranscoder(counting)
    for i in range(3):
        reading = {"readings": {f"joint_{j}": j + i / 7 for j in range(12)}, "label": "a" * 200}
        body = body_of(1, 2, reading)
        assert rows.row(body) == general(body)
    assert counting.calls == 1


def test_non_finite_numbers_take_the_general_path_and_its_spelling():
    counting = Counting()
    rows = TabularTranscoder(counting)
    rows.row(body_of(1, 2, {"readings": {"x": 1.0}}))
    for value, text in ((math.nan, '"NaN"'), (math.inf, '"Infinity"'), (-math.inf, '"-Infinity"')):
        assert rows.row(body_of(1, 2, {"readings": {"x": value}})) == (
            1,
            2,
            f'{{"readings":{{"x":{text}}}}}',
        )
    assert counting.calls == 4


def test_shapes_of_one_length_each_give_their_own_json():
    rows = TabularTranscoder(encode)
    a, b = body_of(1, 2, {"ab": 1.0, "s": "xy"}), body_of(1, 2, {"cd": 1.0, "s": "zz"})
    assert len(a) == len(b)
    for _ in range(3 * _tabular_json._RELEARN_AFTER):
        assert rows.row(a) == (1, 2, '{"ab":1.0,"s":"xy"}')
        assert rows.row(b) == (1, 2, '{"cd":1.0,"s":"zz"}')


def test_a_changed_shape_is_learned_again_after_some_misses():
    counting = Counting()
    rows = TabularTranscoder(counting)
    rows.row(body_of(1, 2, {"ab": 1.0}))
    changed = body_of(1, 2, {"cd": 1.0})
    for _ in range(_tabular_json._RELEARN_AFTER + 5):
        rows.row(changed)
    assert counting.calls == 1 + _tabular_json._RELEARN_AFTER  # then learned: no more calls


def test_percent_signs_in_keys_and_strings_are_not_format_slots():
    rows = TabularTranscoder(encode)
    body = body_of(1, 2, {"100%": 0.5, "%r": "%s %%", "x": 2.0})
    for _ in range(2):
        assert rows.row(body) == (1, 2, '{"100%":0.5,"%r":"%s %%","x":2.0}')


def _entry(key: bytes, value: bytes) -> bytes:
    inner = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(value)]) + value
    return b"\x0a" + bytes([len(inner)]) + inner


def _record(struct_bytes: bytes) -> bytes:
    return b"\x12" + bytes([len(struct_bytes)]) + struct_bytes


@pytest.mark.parametrize(
    "struct_bytes",
    [
        _entry(b"x", b"\x11" + struct.pack("<d", 1.0)) * 2,  # a repeated key: the last wins
        _entry(b"x", b"") + _entry(b"y", b"\x11" + struct.pack("<d", 2.0)),  # a Value with no kind
        b"\x0a\x03\x0a\x01x" + _entry(b"y", b"\x11" + struct.pack("<d", 2.0)),  # no value
        _entry(b"x", b"\x11" + struct.pack("<d", 1.0) + b"\x20\x01"),  # two kinds in one Value
    ],
    ids=["repeated-key", "no-kind", "no-value", "two-kinds"],
)
def test_unusual_structs_give_the_general_paths_row(struct_bytes):
    rows = TabularTranscoder(encode)
    body = _record(struct_bytes)
    for _ in range(2):
        assert rows.row(body) == general(body)


@settings(max_examples=300, deadline=None)
@given(obj=cst.readings_objects, edits=cst.edits)
def test_mutated_records_give_the_general_paths_row_or_error(obj, edits):
    rows = TabularTranscoder(encode)
    body = body_of(1_700_000_000_000_000_001, 1_700_000_000_000_000_002, obj)
    rows.row(body)  # learn the valid shape first, so mutations meet a plan of its length
    mutated = cst.mutate(body, edits)
    assert outcome(rows.row, mutated) == outcome(general, mutated)


def test_a_binary_record_has_no_row():
    framed = RecordEncoder().binary_prefix(1, 2, 3) + b"abc"
    _, pos = decode_varint(framed, 0)
    assert TabularTranscoder(encode).row(framed[pos:]) is None


def test_learned_shapes_stay_bounded(monkeypatch):
    monkeypatch.setattr(_tabular_json, "_PLANS_LIMIT", 4)
    rows = TabularTranscoder(encode)
    for n in range(20):
        body = body_of(1, 2, {"k" * (n + 1): 1.0})
        assert rows.row(body) == general(body)
        assert len(rows._plans) <= 4


def test_large_structs_are_not_learned_but_still_right():
    counting = Counting()
    rows = TabularTranscoder(counting)
    big = {"readings": {"ranges": [float(i) for i in range(_tabular_json._LEARN_BYTES // 8)]}}
    body = body_of(1, 2, big)
    assert len(StructEncoder().encode(big)) > _tabular_json._LEARN_BYTES
    for _ in range(2):
        assert rows.row(body) == general(body)
    assert counting.calls == 2

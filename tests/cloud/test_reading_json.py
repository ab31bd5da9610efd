"""``reading_json``: the JSON text every store keeps a reading's Struct as."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.errors import InvalidArgument
from cloud.reading_json import _compact_reading, compact, reading_json

JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), JSON_LIKE))
def test_the_reused_reading_encoder_writes_exactly_what_json_dumps_does(value: dict) -> None:
    try:
        expected = compact(value)
    except ValueError:  # NaN or infinity: both refuse, and ingest normalizes them
        with pytest.raises(ValueError, match="not JSON compliant"):
            _compact_reading(value)
        return
    assert _compact_reading(value) == expected


def test_non_finite_floats_are_spelled_as_the_proto3_json_mapping_does() -> None:
    value = {"a": math.nan, "b": [math.inf, -math.inf], "c": 1.5}
    assert reading_json(value, "r") == '{"a":"NaN","b":["Infinity","-Infinity"],"c":1.5}'


def test_a_value_that_is_not_json_like_is_named_by_its_path() -> None:
    with pytest.raises(InvalidArgument, match=r"record 3 data\.k\[1\] holds a bytes"):
        reading_json({"k": [1, b"x"]}, "record 3 data")

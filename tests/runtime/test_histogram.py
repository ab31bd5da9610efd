"""The tick-lateness histogram: buckets, percentiles, and the cohort's shared-bucket path."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from actors.histogram import EDGES, LatencyHistogram, bucket

durations = st.floats(min_value=-1.0, max_value=100.0, allow_nan=False)


@given(durations)
def test_bucket_holds_the_duration_below_its_upper_edge(seconds: float) -> None:
    index = bucket(seconds)
    assert 0 <= index <= len(EDGES)
    if index < len(EDGES):
        assert seconds <= EDGES[index] * (1 + 1e-9)
    if 0 < index <= len(EDGES):
        assert seconds > EDGES[index - 1] * (1 - 1e-9)


@given(st.lists(durations, max_size=50))
def test_add_at_with_the_bucket_records_the_same_as_add(values: list[float]) -> None:
    one, other = LatencyHistogram(), LatencyHistogram()
    for seconds in values:
        one.add(seconds)
        other.add_at(bucket(seconds), seconds)
    assert (one.counts, one.total, one.max) == (other.counts, other.total, other.max)


def test_percentile_is_the_upper_edge_of_the_bucket_capped_at_the_max() -> None:
    h = LatencyHistogram()
    for _ in range(99):
        h.add(0.0004)
    h.add(0.3)
    assert math.isclose(h.percentile(50), 0.0004)
    assert math.isclose(h.percentile(99), 0.0004)
    assert h.percentile(100) == 0.3
    assert LatencyHistogram().percentile(99) == 0.0


def test_negative_lateness_counts_in_the_first_bucket() -> None:
    h = LatencyHistogram()
    h.add(-0.002)
    assert h.counts[0] == 1
    assert h.max == 0.0

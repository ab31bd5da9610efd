"""The simulated cloud's inventory: SQL counting gives what decoding every reading gives."""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from cloud.model import Filter, TabularRecord
from sim.cloud import PART_ID, PRINCIPAL, SimCloud
from sim.trace import Trace
from tests.cloud.store.conftest import make_ctx

if TYPE_CHECKING:
    from pathlib import Path

    from actors.codec import JsonObject

T0 = 1_767_225_600 * 10**9


def _python_inventory(cloud: SimCloud) -> Counter[str]:
    """The reference: every stored reading decoded, keyed as ``sim.checker.reading_key`` does."""
    found: Counter[str] = Counter()
    for doc in cloud.store.iter_reading_documents(PRINCIPAL, Filter()):
        data = doc.get("data")
        readings = data.get("readings") if isinstance(data, dict) else None
        if isinstance(readings, dict):
            found[f"{readings.get('src')}#{readings.get('seq')}"] += 1
    return found


def test_inventory_counts_every_key_like_decoding_each_reading(tmp_path: Path) -> None:
    """Duplicates, missing fields and non-object readings count as in the Python reference."""
    cloud = SimCloud(tmp_path, lambda: T0, random.Random(1), Trace(lambda: 0.0))
    try:
        part = cloud.store.resolve_part(PRINCIPAL, PART_ID)
        data: list[JsonObject] = [
            {"readings": {"src": "s1", "seq": 1, "value": 0.5}},
            {"readings": {"src": "s1", "seq": 1, "value": 0.5}},  # a duplicate
            {"readings": {"src": "s1", "seq": 2}},
            {"readings": {"src": "s2", "seq": 2.5}},
            {"readings": {"src": "s3"}},  # no seq: "s3#None"
            {"readings": {"seq": 7}},  # no src: "None#7"
            {"readings": [1, 2]},  # not an object: not counted
            {"readings": "s1#3"},
            {"other": {"src": "s9", "seq": 9}},
        ]
        records = [TabularRecord(T0 + i, T0 + i, d) for i, d in enumerate(data)]
        cloud.store.commit_tabular(part, make_ctx(), records, file_id="f-1")
        got = cloud.inventory()
        assert got == _python_inventory(cloud)
        assert got["s1#1"] == 2
        assert got["s3#None"] == 1
        assert got["None#7"] == 1
        assert sum(got.values()) == 6
    finally:
        cloud.close()


def test_untagged_names_the_readings_stored_without_the_robots_tag(tmp_path: Path) -> None:
    cloud = SimCloud(tmp_path, lambda: T0, random.Random(1), Trace(lambda: 0.0))
    try:
        part = cloud.store.resolve_part(PRINCIPAL, PART_ID)
        for n, tags in enumerate([("sim-robot", "t1"), ("sim-robot-2",), ()]):
            record = TabularRecord(T0 + n, T0 + n, {"readings": {"src": "s1", "seq": n}})
            cloud.store.commit_tabular(part, make_ctx(tags=tags), [record], file_id=f"f-{n}")
        assert sorted(cloud.untagged("sim-robot")) == ["s1#1", "s1#2"]
        with pytest.raises(ValueError, match="goes in SQL"):
            cloud.untagged("x' OR 1")
    finally:
        cloud.close()

"""BSON in and out of TabularDataByMQL (cloud/query/bsonio.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import bson
import pytest
from bson.regex import Regex
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.errors import InvalidArgument
from cloud.query import CODEC_OPTIONS, compile_pipeline, decode_stages, encode_documents
from cloud.query.bsonio import to_bson_value

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def strictly_equal(a, b):
    """Equality that also requires the same kind (``1 == 1.0 == True`` in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):  # bson decodes int64 as Int64(int)
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _ms_datetimes():
    return st.datetimes(timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    )


# BSON strings are UTF-8: no lone surrogates (test_unpaired_surrogates_are_replaced).
texts = st.text(st.characters(blacklist_categories=["Cs"]))
keys = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8)
json_like = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        texts,
        _ms_datetimes(),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=8,
)
documents = st.dictionaries(keys, json_like, max_size=4)


@settings(max_examples=50, deadline=None)
@given(st.lists(documents, max_size=2))
def test_round_trip_json_like_documents(docs):
    encoded = encode_documents(docs)
    assert len(encoded) == len(docs)
    for raw, doc in zip(encoded, docs, strict=True):
        assert strictly_equal(bson.decode(raw, codec_options=CODEC_OPTIONS), doc)


def test_encoding_converts_what_bson_cannot_hold():
    doc = {
        "big": 2**63,
        "small": -(2**63) - 1,
        "edge": 2**63 - 1,
        "huge": 10**400,
        "neg_huge": -(10**400),
        "tuple": (1, (2, 3)),
        "flag": True,
        "nested": [{"t": (T0,)}],
    }
    (raw,) = encode_documents([doc])
    out = bson.decode(raw, codec_options=CODEC_OPTIONS)
    assert out == {
        "big": float(2**63),
        "small": float(-(2**63) - 1),
        "edge": 2**63 - 1,
        "huge": math.inf,
        "neg_huge": -math.inf,
        "tuple": [1, [2, 3]],
        "flag": True,
        "nested": [{"t": [T0]}],
    }
    assert type(out["big"]) is float
    assert out["flag"] is True


def test_datetimes_are_utc_milliseconds():
    plus2 = timezone(timedelta(hours=2))
    docs = [
        {
            "micro": T0.replace(microsecond=123456),
            "naive": datetime(2024, 1, 1, 8, 30),
            "offset": datetime(2024, 1, 1, 10, 30, tzinfo=plus2),
        }
    ]
    out = bson.decode(encode_documents(docs)[0], codec_options=CODEC_OPTIONS)
    assert out["micro"] == T0.replace(microsecond=123000)
    assert out["naive"] == datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    assert out["offset"] == datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    assert out["offset"].utcoffset() == timedelta(0)


def test_unpaired_surrogates_are_replaced():
    # json.loads('"\\ud800"') yields a lone surrogate, which UTF-8 cannot encode.
    docs = [{"ok": "é"}, {"s": "a\ud800b", "k\udfff": ["\udc00"], "n": 1}]
    out = [bson.decode(raw, codec_options=CODEC_OPTIONS) for raw in encode_documents(docs)]
    assert out == [{"ok": "é"}, {"s": "a\ufffdb", "k\ufffd": ["\ufffd"], "n": 1}]


def test_nul_in_a_field_name_is_invalid_argument():
    with pytest.raises(InvalidArgument, match=r"result 1: field name 'a\\x00b' contains a NUL"):
        encode_documents([{"ok": 1}, {"x": {"a\x00b": 1}}])
    assert to_bson_value({"s": "a\x00b"}) == {"s": "a\x00b"}  # NUL in values is fine


def test_decode_stages_round_trip_with_aware_datetimes():
    stages = [
        {"$match": {"time_requested": {"$gte": T0}, "s": Regex("^a", "i")}},
        {"$sort": {"time_requested": -1}},
        {"$limit": 10},
    ]
    decoded = decode_stages([bson.encode(s) for s in stages])
    assert decoded[0]["$match"]["time_requested"]["$gte"] == T0
    assert decoded[0]["$match"]["time_requested"]["$gte"].tzinfo is not None
    assert decoded[1:] == stages[1:]
    docs = [{"time_requested": T0 + timedelta(seconds=i), "s": "Ab"} for i in range(-2, 3)]
    out = list(compile_pipeline(decoded).run(docs))
    assert [d["time_requested"] for d in out] == [T0 + timedelta(seconds=i) for i in (2, 1, 0)]
    assert decode_stages([]) == []
    assert decode_stages([bytearray(bson.encode({"$limit": 1}))]) == [{"$limit": 1}]


GOOD = bson.encode({"$limit": 1})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([GOOD, GOOD, b"\x00\x01"], "mql_binary[2]: not a BSON document ("),
        ([b""], "mql_binary[0]: not a BSON document ("),
        ([GOOD + b"\x00"], "mql_binary[0]: not a BSON document ("),
        ([GOOD, GOOD[:-1]], "mql_binary[1]: not a BSON document ("),
        ([GOOD, bson.encode({})], "mql_binary[1]: stage must have exactly one operator, got []"),
        (
            [bson.encode({"$match": {}, "$limit": 1})],
            "mql_binary[0]: stage must have exactly one operator, got ['$match', '$limit']",
        ),
        ([bson.encode({"match": {}})], "stage must have exactly one operator, got ['match']"),
    ],
    ids=repr,
)
def test_decode_stages_rejects(raw, message):
    with pytest.raises(InvalidArgument) as info:
        decode_stages(raw)
    assert message in str(info.value)


@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_never_crashes(data):
    try:
        stages = decode_stages([data])
    except InvalidArgument as exc:
        error = str(exc)
    else:
        error = "mql_binary[0]: " if len(stages) == 1 else "wrong count"
    assert error.startswith("mql_binary[0]: ")

"""The MQL evaluator (cloud/query): stages and operators against hand-checked tables.

Expected results follow MongoDB's documented semantics (array-contains
matching, null matching missing fields, type bracketing, BSON sort order);
docs/mql.md lists where Ferry deliberately differs. A Hypothesis property
compares ``$match`` + ``$sort`` + ``$skip`` + ``$limit`` with a plain Python
reference, and laziness is checked over infinite inputs.
"""

from __future__ import annotations

import itertools
import operator
from datetime import UTC, datetime, timedelta

import pytest
from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from cloud.errors import InvalidArgument
from cloud.query import PUSHDOWN_FIELDS, compile_pipeline
from cloud.query._values import compare, group_key

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)


def run(stages, docs, **kwargs):
    return list(compile_pipeline(stages).run(docs, **kwargs))


def ids(stages, docs):
    return [d["_id"] for d in run(stages, docs)]


def rejects(stages, message):
    with pytest.raises(InvalidArgument) as info:
        compile_pipeline(stages)
    assert message in str(info.value)
    return str(info.value)


# -- $match -----------------------------------------------------------------------

COLL = [
    {
        "_id": 1,
        "a": 5,
        "s": "abc",
        "t": T0,
        "tags": ["x", "y"],
        "data": {"readings": {"x": 1.5, "list": [1, 2, 3]}},
        "arr": [{"v": 1}, {"v": 10}],
    },
    {
        "_id": 2,
        "a": 5.0,
        "s": "ABD",
        "t": T1,
        "tags": [],
        "data": {"readings": {"x": -2}},
        "arr": [{"v": 3}],
    },
    {"_id": 3, "a": "5", "s": None, "tags": ["y"], "data": {"readings": {}}, "arr": []},
    {
        "_id": 4,
        "a": True,
        "t": "2024-05-01",
        "data": {"readings": {"x": 7, "list": [[1, 2], 9]}},
        "arr": [5, {"v": None}],
    },
    {"_id": 5, "a": [1, 5, 9], "nested": {"a": {"b": [{"c": 1}, {"c": 2}]}}},
]

MATCH_CASES = [
    ({}, [1, 2, 3, 4, 5]),
    # implicit equality: numbers across int/float, array contains, no bool/string coercion
    ({"a": 5}, [1, 2, 5]),
    ({"a": 1}, [5]),
    ({"a": True}, [4]),
    ({"a": "5"}, [3]),
    ({"a": [1, 5, 9]}, [5]),
    ({"a": {"$eq": [1, 5, 9]}}, [5]),
    ({"a": {"$ne": 5}}, [3, 4]),
    # comparisons are type-bracketed
    ({"a": {"$gt": 4}}, [1, 2, 5]),
    ({"a": {"$gt": "4"}}, [3]),
    ({"a": {"$lt": 2}}, [5]),
    ({"a": {"$gte": 5, "$lte": 5}}, [1, 2, 5]),
    ({"a": {"$not": {"$gt": 4}}}, [3, 4]),
    ({"a": {"$in": [1, "5"]}}, [3, 5]),
    ({"_id": {"$in": []}}, []),
    ({"_id": {"$nin": [1, 2]}}, [3, 4, 5]),
    # null matches null and missing
    ({"s": None}, [3, 4, 5]),
    ({"s": {"$ne": None}}, [1, 2]),
    ({"s": {"$gte": None}}, [3, 4, 5]),
    ({"s": {"$gt": None}}, []),
    ({"s": {"$exists": True}}, [1, 2, 3]),
    ({"s": {"$exists": False}}, [4, 5]),
    ({"s": {"$in": ["abc", None]}}, [1, 3, 4, 5]),
    ({"s": {"$nin": ["abc", None]}}, [2]),
    # regexes
    ({"s": {"$regex": "^ab"}}, [1]),
    ({"s": {"$regex": "^ab", "$options": "i"}}, [1, 2]),
    ({"s": Regex("^AB")}, [2]),
    ({"s": {"$regex": Regex("^ab", "i")}}, [1, 2]),
    ({"s": {"$not": {"$regex": "^ab"}}}, [2, 3, 4, 5]),
    ({"s": {"$not": Regex("^ab")}}, [2, 3, 4, 5]),
    ({"s": {"$in": [Regex("D$")]}}, [2]),
    ({"tags": {"$regex": "^x"}}, [1]),
    # datetimes compare with datetimes only
    ({"t": {"$gte": T0}}, [1, 2]),
    ({"t": {"$lt": T1}}, [1]),
    ({"t": T1}, [2]),
    ({"t": {"$gt": "2000"}}, [4]),
    # arrays and dotted paths
    ({"tags": "y"}, [1, 3]),
    ({"tags": []}, [2]),
    ({"tags.0": "y"}, [3]),
    ({"tags.1": "y"}, [1]),
    ({"data.readings.x": {"$gt": 0}}, [1, 4]),
    ({"data.readings.x": {"$exists": False}}, [3, 5]),
    ({"data.readings.list": 2}, [1]),
    ({"data.readings.list": [1, 2]}, [4]),
    ({"data.readings.list": 1}, [1]),  # nested arrays are not flattened twice
    ({"data.readings": {}}, [3]),
    ({"data.readings": {"x": -2}}, [2]),
    ({"arr.v": 10}, [1]),
    ({"arr.v": {"$gte": 3}}, [1, 2]),
    ({"arr.v": None}, [3, 4, 5]),
    ({"arr.1.v": 10}, [1]),
    ({"nested.a.b.c": 2}, [5]),
    # logical operators
    ({"$or": [{"a": True}, {"tags": "x"}]}, [1, 4]),
    ({"$and": [{"a": 5}, {"tags": "y"}]}, [1]),
    ({"$nor": [{"a": 5}]}, [3, 4]),
    ({"a": 5, "tags": "y"}, [1]),
]


@pytest.mark.parametrize(("query", "expected"), MATCH_CASES, ids=repr)
def test_match(query, expected):
    assert ids([{"$match": query}], COLL) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"$where": "1"}, "stage 0 ($match): unsupported top-level operator $where"),
        ({"$expr": {}}, "unsupported top-level operator $expr"),
        ({"a": {"$elemMatch": {}}}, "a: unsupported query operator $elemMatch; supported: $eq"),
        ({"a": {"$in": 5}}, "a: $in needs an array, got int"),
        ({"a": {"$nin": "x"}}, "a: $nin needs an array"),
        ({"$or": []}, "$or needs a non-empty array"),
        ({"$or": [1]}, "$or[0]: the query must be a document"),
        ({"a": {"$regex": "("}}, "a: invalid regex '('"),
        ({"a": {"$regex": "x", "$options": "q"}}, "unsupported $regex option 'q'"),
        ({"a": {"$regex": 5}}, "$regex needs a string"),
        ({"a": {"$options": "i"}}, "$options needs $regex"),
        ({"a": {"$not": 5}}, "$not needs a regex or an operator document"),
        ({"a": {"$exists": "yes"}}, "$exists needs a boolean"),
        ({"a..b": 1}, "invalid field path 'a..b'"),
        ({"a.$b": 1}, "has a component starting with '$'"),
        ([1], "the query must be a document"),
    ],
    ids=repr,
)
def test_match_rejects(query, message):
    rejects([{"$match": query}], message)


# -- $project -----------------------------------------------------------------------

DOC = {
    "_id": 7,
    "a": 1,
    "b": {"c": 2, "d": 3},
    "arr": [{"x": 1, "y": 2}, 5, {"y": 3}],
    "t": T0,
}
REST = {k: v for k, v in DOC.items() if k != "_id"}

PROJECT_CASES = [
    ({"a": 1}, {"_id": 7, "a": 1}),
    ({"a": True, "_id": 0}, {"a": 1}),
    ({"a": 5}, {"_id": 7, "a": 1}),  # any non-zero number includes
    ({"_id": 1}, {"_id": 7}),
    ({"_id": 0}, REST),
    ({"b.c": 1}, {"_id": 7, "b": {"c": 2}}),
    ({"b": {"c": 1}}, {"_id": 7, "b": {"c": 2}}),
    ({"arr.y": 1}, {"_id": 7, "arr": [{"y": 2}, {"y": 3}]}),
    ({"b.zz": 1}, {"_id": 7, "b": {}}),
    ({"a.zz": 1}, {"_id": 7}),
    ({"a": 0}, {k: v for k, v in DOC.items() if k != "a"}),
    ({"b.c": 0, "_id": 0, "t": False}, {"a": 1, "b": {"d": 3}, "arr": DOC["arr"]}),
    ({"arr.y": 0, "b": 0, "t": 0}, {"_id": 7, "a": 1, "arr": [{"x": 1}, 5, {}]}),
    ({"v": "$b.c"}, {"_id": 7, "v": 2}),
    ({"v": "$arr.y"}, {"_id": 7, "v": [2, 3]}),
    ({"v": "$missing"}, {"_id": 7}),
    ({"v": {"$literal": 1}}, {"_id": 7, "v": 1}),
    ({"v": {"$literal": "$a"}}, {"_id": 7, "v": "$a"}),
    ({"v": "text", "n": None}, {"_id": 7, "v": "text", "n": None}),
    ({"v": ["$a", "$missing"]}, {"_id": 7, "v": [1, None]}),
    ({"v": {"p": "$a", "q": "$missing"}}, {"_id": 7, "v": {"p": 1}}),
    ({"out.x": "$a", "_id": 0}, {"out": {"x": 1}}),
    ({"b.e": "$a", "b.c": 1}, {"_id": 7, "b": {"c": 2, "e": 1}}),
    ({"_id": "$a", "w": "$t"}, {"_id": 1, "w": T0}),
    ({"r": "$$ROOT", "_id": 0}, {"r": DOC}),
    ({"v": "$$CURRENT.b.c"}, {"_id": 7, "v": 2}),
]


@pytest.mark.parametrize(("spec", "expected"), PROJECT_CASES, ids=repr)
def test_project(spec, expected):
    original = repr(DOC)
    assert run([{"$project": spec}], [DOC]) == [expected]
    assert repr(DOC) == original  # the input is never modified


def test_project_nested_readings():
    docs = [{"_id": 1, "data": {"readings": {"x": 1, "y": 2}}, "robot_name": "r"}]
    spec = {"_id": 0, "robot": "$robot_name", "x": "$data.readings.x", "data.readings.y": 1}
    assert run([{"$project": spec}], docs) == [
        {"data": {"readings": {"y": 2}}, "robot": "r", "x": 1}
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "stage 0 ($project): $project needs a non-empty document"),
        (1, "$project needs a non-empty document"),
        ({"a": 1, "b": 0}, "cannot mix exclusion with inclusion or computed fields"),
        ({"a": 0, "v": "$x"}, "cannot mix exclusion"),
        ({"a": 1, "a.b": 1}, "path collision at a.b"),
        ({"a.b": 1, "a": 1}, "path collision at a"),
        ({"v": {"$add": [1, 2]}}, "v: unsupported expression operator $add; supported: $literal"),
        ({"v": {"$literal": 1, "x": 2}}, "exactly one '$' operator"),
        ({"v": "$$NOW"}, "unsupported variable '$$NOW'"),
        ({"v": {}}, "v: an empty document is not valid"),
        ({"$a": 1}, "has a component starting with '$'"),
        ({"v": "$"}, "invalid field path ''"),
    ],
    ids=repr,
)
def test_project_rejects(spec, message):
    rejects([{"$project": spec}], message)


# -- $sort, $limit, $skip, $count ----------------------------------------------------

MIXED = [
    {"_id": 1, "k": "b"},
    {"_id": 2, "k": 2},
    {"_id": 3},
    {"_id": 4, "k": None},
    {"_id": 5, "k": 1.5},
    {"_id": 6, "k": T0},
    {"_id": 7, "k": True},
    {"_id": 8, "k": {"a": 1}},
    {"_id": 9, "k": []},
    {"_id": 10, "k": [3, 0.5]},
    {"_id": 11, "k": "a"},
]


def test_sort_follows_bson_type_order():
    # empty array < null = missing < numbers < strings < objects < booleans < dates;
    # an array sorts by its smallest element ascending, its largest descending.
    assert ids([{"$sort": {"k": 1}}], MIXED) == [9, 3, 4, 10, 5, 2, 11, 1, 8, 7, 6]
    assert ids([{"$sort": {"k": -1}}], MIXED) == [6, 7, 8, 1, 11, 10, 2, 5, 3, 4, 9]


def test_sort_multi_key_nested_and_datetimes():
    docs = [
        {"_id": i, "g": g, "data": {"readings": {"x": x}}, "t": T0 + timedelta(seconds=s)}
        for i, (g, x, s) in enumerate([(1, 2, 5), (0, 1, 4), (1, 1, 3), (0, 3, 2), (1, 2, 1)])
    ]
    assert ids([{"$sort": {"g": -1, "data.readings.x": 1}}], docs) == [2, 0, 4, 1, 3]
    assert ids([{"$sort": {"t": 1}}], docs) == [4, 3, 2, 1, 0]
    assert ids([{"$sort": {"g": 1, "t": -1}}], docs) == [1, 3, 0, 2, 4]


def test_limit_skip_count():
    docs = [{"_id": i} for i in range(10)]
    assert ids([{"$skip": 3}, {"$limit": 2}], docs) == [3, 4]
    assert ids([{"$limit": 2.0}, {"$skip": 0}], docs) == [0, 1]
    assert ids([{"$skip": 20}], docs) == []
    assert run([{"$match": {"_id": {"$gte": 4}}}, {"$count": "n"}], docs) == [{"n": 6}]
    assert run([{"$match": {"_id": -1}}, {"$count": "n"}], docs) == []  # as MongoDB


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"$sort": {}}, "stage 0 ($sort): needs a non-empty document"),
        ({"$sort": {"a": 0}}, "a: sort direction must be 1 or -1, got 0"),
        ({"$sort": {"a": True}}, "sort direction must be 1 or -1, got True"),
        ({"$sort": {"a": {"$meta": "textScore"}}}, "sort direction must be 1 or -1"),
        ({"$limit": 0}, "stage 0 ($limit): needs a positive integer, got 0"),
        ({"$limit": 1.5}, "needs a positive integer, got 1.5"),
        ({"$limit": "3"}, "needs a positive integer"),
        ({"$skip": -1}, "stage 0 ($skip): needs a non-negative integer, got -1"),
        ({"$skip": True}, "needs a non-negative integer"),
        ({"$count": ""}, "stage 0 ($count): needs a non-empty field name"),
        ({"$count": "$n"}, "needs a non-empty field name"),
        ({"$count": "a.b"}, "needs a non-empty field name"),
    ],
    ids=repr,
)
def test_simple_stages_reject(stage, message):
    rejects([stage], message)


# -- $group -----------------------------------------------------------------------


def test_group_all_accumulators():
    docs = [{"v": 1}, {"v": 2.5}, {"v": "x"}, {"v": None}, {}, {"v": 4}]
    spec = {
        "_id": None,
        "n": {"$sum": 1},
        "total": {"$sum": "$v"},
        "avg": {"$avg": "$v"},
        "mn": {"$min": "$v"},
        "mx": {"$max": "$v"},
        "first": {"$first": "$v"},
        "last": {"$last": "$v"},
        "c": {"$count": {}},
    }
    assert run([{"$group": spec}], docs) == [
        {
            "_id": None,
            "n": 6,
            "total": 7.5,
            "avg": 2.5,
            "mn": 1,
            "mx": "x",
            "first": 1,
            "last": 4,
            "c": 6,
        }
    ]


def test_group_by_path_merges_equal_numbers_and_null_with_missing():
    docs = [{"k": 1, "v": 1}, {"k": 1.0, "v": 2}, {"v": 3}, {"k": None, "v": 4}, {"k": "1", "v": 5}]
    out = run([{"$group": {"_id": "$k", "s": {"$sum": "$v"}, "l": {"$last": "$missing"}}}], docs)
    assert out == [
        {"_id": 1, "s": 3, "l": None},
        {"_id": None, "s": 7, "l": None},
        {"_id": "1", "s": 5, "l": None},
    ]
    assert type(out[0]["s"]) is int


def test_group_compound_key_over_readings():
    docs = [
        {
            "component_name": c,
            "method_name": "Readings",
            "data": {"readings": {"x": x}},
            "time_requested": T0 + timedelta(seconds=i),
        }
        for i, (c, x) in enumerate([("a", 1), ("b", 10), ("a", 3), ("b", 20), ("a", 5)])
    ]
    spec = {
        "_id": {"c": "$component_name", "m": "$method_name"},
        "avg": {"$avg": "$data.readings.x"},
        "latest": {"$max": "$time_requested"},
        "n": {"$count": {}},
    }
    out = run([{"$group": spec}, {"$sort": {"_id.c": -1}}], docs)
    assert out == [
        {
            "_id": {"c": "b", "m": "Readings"},
            "avg": 15.0,
            "latest": T0 + timedelta(seconds=3),
            "n": 2,
        },
        {
            "_id": {"c": "a", "m": "Readings"},
            "avg": 3.0,
            "latest": T0 + timedelta(seconds=4),
            "n": 3,
        },
    ]


def test_group_edge_values():
    assert run([{"$group": {"_id": 1, "a": {"$avg": "$x"}, "m": {"$min": "$x"}}}], [{}]) == [
        {"_id": 1, "a": None, "m": None}
    ]
    big = [{"x": 2**62}, {"x": 2**62}, {"x": 2**62}]
    assert run([{"$group": {"_id": None, "s": {"$sum": "$x"}}}], big) == [
        {"_id": None, "s": 3 * 2**62}
    ]
    assert run([{"$group": {"_id": None}}], []) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"n": {"$sum": 1}}, "stage 0 ($group): needs a document with an _id key expression"),
        ({"_id": None, "n": {"$push": "$x"}}, "n: unsupported accumulator $push; supported: $sum"),
        ({"_id": None, "a.b": {"$sum": 1}}, "a.b: invalid output field name"),
        ({"_id": None, "n": {"$sum": 1, "$avg": 1}}, "n: needs a document with one accumulator"),
        ({"_id": None, "n": 1}, "n: needs a document with one accumulator"),
        ({"_id": None, "n": {"$count": 1}}, "$count takes no argument"),
        ({"_id": {"$toUpper": "$x"}}, "_id: unsupported expression operator $toUpper"),
        ({"_id": None, "n": {"$sum": {"$multiply": [1, 2]}}}, "unsupported expression operator"),
    ],
    ids=repr,
)
def test_group_rejects(spec, message):
    rejects([{"$group": spec}], message)


# -- pipelines --------------------------------------------------------------------


def test_unsupported_stage_names_index_operator_and_supported_list():
    msg = rejects([{"$match": {}}, {"$lookup": {}}], "stage 1: unsupported stage $lookup")
    assert "supported: $count, $group, $limit, $match, $project, $skip, $sort" in msg
    rejects([{"$match": {}, "$limit": 1}], "stage 0: a stage must have exactly one operator")
    rejects([{}], "stage 0: a stage must have exactly one operator, got []")


def test_compile_validates_every_stage_before_reading():
    def untouchable():
        raise AssertionError("read")
        yield {}

    with pytest.raises(InvalidArgument, match=r"stage 2 \(\$limit\)"):
        compile_pipeline([{"$match": {}}, {"$sort": {"a": 1}}, {"$limit": -1}])
    pipeline = compile_pipeline([{"$match": {}}])
    pipeline.run(untouchable())  # nothing is read until results are pulled


def test_blocking_stages_are_capped():
    docs = [{"_id": i, "g": i} for i in range(5)]
    with pytest.raises(InvalidArgument) as info:
        run([{"$sort": {"_id": -1}}], docs, max_docs=4)
    assert str(info.value) == (
        "stage 0 ($sort): more than 4 documents; add a $match or $limit before it"
    )
    with pytest.raises(InvalidArgument, match=r"stage 1 \(\$group\): more than 4 groups"):
        run([{"$match": {}}, {"$group": {"_id": "$g"}}], docs, max_docs=4)
    assert len(run([{"$group": {"_id": "$g"}}], docs, max_docs=5)) == 5
    with pytest.raises(ValueError, match="max_docs"):
        compile_pipeline([]).run(docs, max_docs=0)


def test_sort_then_limit_keeps_only_the_top():
    docs = [{"_id": i, "k": (i * 7919) % 101} for i in range(101)]
    full = ids([{"$sort": {"k": -1}}], docs)
    top = ids([{"$sort": {"k": -1}}, {"$skip": 3}, {"$limit": 5}], iter(docs))
    assert top == full[3:8]
    # Only skip + limit documents are held, so the cap is not hit.
    assert ids([{"$sort": {"k": -1}}, {"$skip": 3}, {"$limit": 5}], docs) == top
    assert len(run([{"$sort": {"k": 1}}, {"$limit": 8}], docs, max_docs=8)) == 8


def test_pipeline_is_reusable_and_empty_pipeline_is_identity():
    pipeline = compile_pipeline([{"$match": {"a": {"$gt": 1}}}, {"$project": {"_id": 0}}])
    docs = [{"_id": 1, "a": 1}, {"_id": 2, "a": 2}]
    assert list(pipeline.run(docs)) == list(pipeline.run(docs)) == [{"a": 2}]
    assert run([], docs) == docs


def test_streaming_stages_are_lazy_over_infinite_input():
    pulled = itertools.count()

    def endless():
        for i in itertools.count():
            next(pulled)
            yield {"_id": i, "data": {"readings": {"x": i % 10}}}

    stages = [
        {"$match": {"data.readings.x": {"$gte": 5}}},
        {"$project": {"x": "$data.readings.x"}},
        {"$skip": 2},
        {"$limit": 3},
    ]
    out = run(stages, endless())
    assert out == [{"_id": 7, "x": 7}, {"_id": 8, "x": 8}, {"_id": 9, "x": 9}]
    assert next(pulled) == 10  # read exactly the ten documents it needed


def test_leading_filter():
    stages = [
        {"$match": {"component_name": "env", "data.x": {"$gt": 1}, "robot_id": {"$eq": "r1"}}},
        {"$match": {"$and": [{"part_id": "p1"}, {"method_name": {"$in": ["a"]}}]}},
        {"$match": {"location_id": 5, "tags": "lab", "component_type": {"$eq": "x", "$ne": "y"}}},
        {"$project": {"part_name": "$robot_name"}},
        {"$match": {"part_name": "renamed"}},
    ]
    assert compile_pipeline(stages).leading_filter() == {
        "component_name": "env",
        "robot_id": "r1",
        "part_id": "p1",
    }
    assert compile_pipeline([{"$limit": 1}, {"$match": {"part_id": "p"}}]).leading_filter() == {}
    assert set(PUSHDOWN_FIELDS) >= {"part_id", "robot_name", "method_name", "location_id"}


# -- the property: $match + $sort + $skip + $limit against a plain reference ----------------

_KIND = {type(None): 0, int: 1, float: 1, str: 2, bool: 3, datetime: 4}  # BSON type order
_MISSING = object()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.text("ab", max_size=2),
    st.datetimes(datetime(2024, 1, 1), datetime(2024, 1, 2), timezones=st.just(UTC)),
)
OPS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _kind(v):
    return 0 if v is _MISSING else _KIND[type(v)]


def _ref_match(v, op, bound):
    same = _kind(v) == _kind(bound)
    if op in ("$eq", "$ne"):
        eq = same and (_kind(v) == 0 or v == bound)
        return eq if op == "$eq" else not eq
    if bound is None:
        return op in ("$gte", "$lte") and _kind(v) == 0
    return v is not _MISSING and same and OPS[op](v, bound)


@given(
    values=st.lists(st.one_of(st.just(_MISSING), scalars), max_size=25),
    op=st.sampled_from(["$eq", "$ne", *OPS]),
    bound=scalars,
    direction=st.sampled_from([1, -1]),
    skip=st.integers(0, 5),
    limit=st.integers(1, 30),
)
def test_match_sort_skip_limit_agree_with_reference(values, op, bound, direction, skip, limit):
    docs = [
        {"_id": i} if v is _MISSING else {"_id": i, "data": {"readings": {"x": v}}}
        for i, v in enumerate(values)
    ]
    stages = [
        {"$match": {"data.readings.x": {op: bound}}},
        {"$sort": {"data.readings.x": direction, "_id": 1}},
        {"$skip": skip},
        {"$limit": limit},
    ]
    kept = [(i, v) for i, v in enumerate(values) if _ref_match(v, op, bound)]
    kept.sort(key=lambda p: (_kind(p[1]), 0 if _kind(p[1]) == 0 else p[1]), reverse=direction == -1)
    expected = [i for i, _ in kept][skip : skip + limit]
    assert ids(stages, docs) == expected


bson_values = st.recursive(
    st.one_of(
        scalars,
        st.sampled_from(
            [
                MinKey(),
                MaxKey(),
                Decimal128("NaN"),
                Decimal128("-0"),
                Decimal128("2.50"),
                float("nan"),
                float("-inf"),
                Int64(2),
                Regex("a", "i"),
                Code("f()"),
            ]
        ),
        st.binary(max_size=3),
        st.builds(ObjectId, st.binary(min_size=12, max_size=12)),
        st.builds(Timestamp, st.integers(0, 9), st.integers(0, 9)),
    ),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text("ab", max_size=1), inner, max_size=2)
    ),
    max_leaves=4,
)


@given(st.lists(bson_values, min_size=3, max_size=3))
def test_compare_is_a_total_order(values):
    a, b, c = values
    assert compare(a, b) == -compare(b, a)
    assert compare(a, a) == 0
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0
    if compare(a, b) == 0:
        assert group_key(a) == group_key(b)


def test_huge_skip_and_id_first():
    docs = [{"_id": 1, "a": 2}]
    assert run([{"$skip": 10**30}], docs) == []
    assert run([{"$sort": {"a": 1}}, {"$skip": 10**30}, {"$limit": 10**30}], docs) == []
    assert list(run([{"$project": {"a": 1, "_id": "$a"}}], docs)[0]) == ["_id", "a"]

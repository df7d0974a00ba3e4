"""Metadata filters: the operators, their validation, and ``list`` applying them before
``limit``/``offset``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import ticking

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import InvalidFilterError, Replica
from memmesh.storage._filters import compile_filter


def matches(spec: dict[str, Any], metadata: dict[str, Any]) -> bool:
    predicate = compile_filter(spec)
    assert predicate is not None
    return predicate(metadata)


@pytest.mark.parametrize(("spec", "metadata", "expected"), [
    ({"kind": "fact"}, {"kind": "fact"}, True),
    ({"kind": "fact"}, {"kind": "pref"}, False),
    ({"kind": {"$eq": "fact"}}, {"kind": "fact"}, True),
    ({"kind": {"$ne": "fact"}}, {"kind": "pref"}, True),
    ({"kind": {"$ne": "fact"}}, {}, True),  # a missing field is None
    ({"n": {"$gt": 3}}, {"n": 4}, True),
    ({"n": {"$gt": 3}}, {"n": 3}, False),
    ({"n": {"$gte": 3}}, {"n": 3}, True),
    ({"n": {"$lt": 3}}, {"n": 2.5}, True),
    ({"n": {"$lte": 3}}, {"n": 4}, False),
    ({"n": {"$gt": 1, "$lt": 5}}, {"n": 3}, True),
    ({"n": {"$gt": 1, "$lt": 5}}, {"n": 7}, False),
    ({"n": {"$gt": 3}}, {"n": "7"}, True),  # numbers through float(), as LangGraph
    ({"n": {"$gt": 0}}, {"n": True}, True),
    ({"n": {"$gt": 3}}, {"n": "seven"}, False),  # LangGraph raises here
    ({"n": {"$gt": 3}}, {"n": [4]}, False),
    ({"n": {"$gt": 3}}, {}, False),
    ({"day": {"$gte": "2025-01-02"}}, {"day": "2025-03-01"}, True),
    ({"kind": {"$in": ["a", "b"]}}, {"kind": "b"}, True),
    ({"kind": {"$in": ["a", "b"]}}, {}, False),
    ({"kind": {"$nin": ["a", "b"]}}, {"kind": "c"}, True),
    ({"kind": {"$nin": ["a", "b"]}}, {}, True),
    ({"tags": ["x", "y"]}, {"tags": ("x", "y")}, True),  # stored lists read as tuples
    ({"tags": ["x", "y"]}, {"tags": ["y", "x"]}, False),
    ({"src": {"doc": "a"}}, {"src": {"doc": "a", "page": 2}}, True),
    ({"src": {"page": {"$gt": 1}}}, {"src": {"doc": "a", "page": 2}}, True),
    ({"src": {"$eq": {"doc": "a"}}}, {"src": {"doc": "a", "page": 2}}, False),  # whole value
    ({"src": {"$eq": {"doc": "a"}}}, {"src": {"doc": "a"}}, True),
    ({"$or": [{"kind": "a"}, {"n": {"$gt": 3}}]}, {"kind": "b", "n": 5}, True),
    ({"$or": [{"kind": "a"}, {"n": {"$gt": 3}}]}, {"kind": "b", "n": 1}, False),
    ({"$and": [{"kind": "a"}, {"n": {"$gt": 3}}]}, {"kind": "a", "n": 5}, True),
    ({"$and": [{"kind": "a"}, {"n": {"$gt": 3}}]}, {"kind": "a", "n": 1}, False),
    ({"kind": "a", "$or": [{"n": 1}, {"n": 2}]}, {"kind": "a", "n": 2}, True),
])
def test_each_operator_and_combiner_matches_as_documented(
        spec: dict[str, Any], metadata: dict[str, Any], expected: bool) -> None:
    assert matches(spec, metadata) is expected


@pytest.mark.parametrize(("spec", "named"), [
    ({"n": {"$regex": "a.*"}}, "$regex"),
    ({"$not": {"n": 1}}, "$not"),
    ({"n": {"$in": "abc"}}, "$in"),
    ({"n": {"$gt": [1]}}, "$gt"),
    ({"n": {"$gt": float("nan")}}, "$gt"),
    ({"$or": []}, "$or"),
    ({"$and": {"n": 1}}, "$and"),
    ({"src": {"page": {"$near": 1}}}, "$near"),
])
def test_a_bad_filter_is_refused_up_front_naming_the_operator(
        spec: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidFilterError, match=named.replace("$", r"\$")):
        compile_filter(spec)


def test_a_filter_that_is_not_a_mapping_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        compile_filter([("n", 1)])  # type: ignore[arg-type]


def test_a_filter_nested_too_deep_is_refused() -> None:
    spec: dict[str, Any] = {"n": 1}
    for _ in range(40):
        spec = {"$and": [spec]}
    with pytest.raises(InvalidFilterError, match="deeper"):
        compile_filter(spec)


# -- LangGraph's dialect (numeric_ranges=True) and its reference ---------------------

def json_values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)), max_leaves=8)


# no bools: a bool in a range test is the one documented difference (test below)
json_scalars = st.one_of(st.none(), st.integers(-2, 2), st.floats(-2, 2),
                         st.sampled_from(["a", "b", "5", "-1.5", "2025-01-02"]))
values = json_values(json_scalars)
operands = st.one_of(
    values,
    st.dictionaries(st.sampled_from(["$eq", "$ne"]), values, min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
                    st.one_of(st.integers(-2, 2), st.sampled_from(["1", "2025-01-01"])),
                    min_size=1, max_size=2))


@settings(max_examples=1000)
@given(st.dictionaries(st.sampled_from("xy"), operands, min_size=1, max_size=2),
       st.dictionaries(st.sampled_from("xy"), st.one_of(st.integers(-2, 2), values),
                       max_size=2))
def test_the_langgraph_dialect_agrees_with_langgraphs_in_memory_store(
        spec: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Wherever LangGraph's own ``InMemoryStore`` evaluator answers, the LangGraph
    dialect answers the same; where it raises (``float()`` of a non-numeric value or
    bound), the dialect skips the value, and refuses a non-numeric bound up front."""
    memory = pytest.importorskip("langgraph.store.memory")
    try:
        predicate = compile_filter(spec, numeric_ranges=True)
    except InvalidFilterError:
        bounds = [b for o in spec.values() if isinstance(o, dict) and "$eq" not in o
                  and "$ne" not in o for b in o.values()]
        assert "2025-01-01" in bounds
        return
    assert predicate is not None
    try:
        expected = all(memory._compare_values(metadata.get(k), v) for k, v in spec.items())
    except (TypeError, ValueError):
        return
    assert predicate(metadata) is expected


@pytest.mark.parametrize(("spec", "metadata", "default", "langgraph"), [
    ({"n": {"$gt": 0}}, {"n": True}, True, False),  # JSON's true is not a number
    ({"n": {"$lte": 0}}, {"n": False}, True, False),
    ({"n": {"$gt": "3"}}, {"n": 5}, True, True),  # a numeric string is a number
    ({"n": {"$gt": 3}}, {"n": "7"}, True, True),
    ({"n": {"$gt": 3}}, {"n": "seven"}, False, False),
    ({"n": {"$in": [1, 2]}}, {"n": 2}, True, True),  # the operators LangGraph lacks
    ({"$or": [{"n": 1}, {"n": 2}]}, {"n": 2}, True, True),
])
def test_the_two_dialects_differ_only_on_bools_and_strings_in_ranges(
        spec: dict[str, Any], metadata: dict[str, Any], default: bool, langgraph: bool) -> None:
    lg = compile_filter(spec, numeric_ranges=True)
    assert lg is not None
    assert (matches(spec, metadata), lg(metadata)) == (default, langgraph)


@pytest.mark.parametrize("bound", ["2025-01-01", "ten", True, None, [1], float("nan")])
def test_the_langgraph_dialect_refuses_a_non_numeric_range_bound_up_front(bound: Any) -> None:
    with pytest.raises(InvalidFilterError, match=r"\$gte"):
        compile_filter({"n": {"$gte": bound}}, numeric_ranges=True)
    if isinstance(bound, str):  # the default dialect compares strings as strings
        assert matches({"n": {"$gte": bound}}, {"n": "zzz"})


# -- list applies filters before paging ------------------------------------------------


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as r:
        yield r


def test_list_filters_by_metadata_before_limit_and_offset(replica: Replica) -> None:
    ids = [replica.add(f"fact {i}", user_id="u", metadata={"n": i, "even": i % 2 == 0})
           for i in range(10)]
    evens = replica.list(user_id="u", filters={"even": True})
    assert [r.id for r in evens] == ids[0::2]
    page = replica.list(user_id="u", filters={"n": {"$gte": 3}}, offset=2, limit=3)
    assert [r.id for r in page] == ids[5:8]
    assert replica.list(user_id="u", offset=20) == []
    assert replica.list(filters={"n": {"$in": [1, 9]}}) == [replica.get(ids[1]),
                                                            replica.get(ids[9])]


def test_list_refuses_a_bad_filter_or_page_before_reading(replica: Replica) -> None:
    replica.add("fact", user_id="u")
    with pytest.raises(InvalidFilterError, match=r"\$like"):
        replica.list(user_id="u", filters={"text": {"$like": "f%"}})
    for bad in ({"limit": -1}, {"offset": -1}, {"offset": 1.5}):
        with pytest.raises(InvalidArgumentError):
            replica.list(user_id="u", **bad)  # type: ignore[arg-type]


def test_a_conflicted_memory_matches_when_any_standing_version_matches(
        tmp_path: Path) -> None:
    from storage_helpers import sync_pair

    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="a", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="b", clock=clock) as b:
        mid = a.add("v0", user_id="u", metadata={"source": "chat"})
        sync_pair(a, b)
        a.update(mid, "va", metadata={"source": "email"})
        b.update(mid, "vb", metadata={"source": "crm"})
        sync_pair(a, b)
        assert a.get(mid) is not None and a.get(mid).conflicted  # type: ignore[union-attr]
        for source in ("email", "crm"):
            assert [r.id for r in a.list(filters={"source": source})] == [mid]
        assert a.list(filters={"source": "chat"}) == []

"""CausalContext against a plain set-of-dots model: compaction is exact and canonical."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import CausalContext, Dot
from memmesh.crdt.testing import dots

REPLICAS = ("A", "B")
DOT_LISTS = st.lists(dots(REPLICAS, max_counter=12), max_size=30)


def _model(ctx: CausalContext) -> set[Dot]:
    return set(ctx.dots())


@settings(max_examples=150)
@given(DOT_LISTS)
def test_context_holds_exactly_the_dots_added(added: list[Dot]) -> None:
    ctx = CausalContext.from_dots(added)
    assert _model(ctx) == set(added)
    for replica in REPLICAS:
        for counter in range(1, 15):
            dot = Dot(replica, counter)
            assert ctx.contains(dot) == (dot in added)


@settings(max_examples=150)
@given(DOT_LISTS, st.randoms(use_true_random=False))
def test_equal_dot_sets_have_equal_fields_whatever_the_insertion_order(
    added: list[Dot], rnd: random.Random
) -> None:
    shuffled = list(added)
    rnd.shuffle(shuffled)
    a, b = CausalContext.from_dots(added), CausalContext.from_dots(shuffled)
    assert a == b
    assert a.vv == b.vv and a.cloud == b.cloud


@settings(max_examples=150)
@given(DOT_LISTS)
def test_context_is_always_compacted(added: list[Dot]) -> None:
    ctx = CausalContext.from_dots(added)
    assert all(n >= 1 for n in ctx.vv.values())
    for dot in ctx.cloud:
        assert dot.counter > ctx.vv.get(dot.replica, 0) + 1


@settings(max_examples=150)
@given(DOT_LISTS, DOT_LISTS)
def test_merge_is_union(left: list[Dot], right: list[Dot]) -> None:
    a = CausalContext.from_dots(left)
    a.merge(CausalContext.from_dots(right))
    assert _model(a) == set(left) | set(right)
    assert a == CausalContext.from_dots(left + right)


@settings(max_examples=150)
@given(DOT_LISTS)
def test_next_dot_is_one_past_the_highest_counter_seen_and_not_added(added: list[Dot]) -> None:
    ctx = CausalContext.from_dots(added)
    for replica in REPLICAS:
        top = max((d.counter for d in added if d.replica == replica), default=0)
        assert ctx.max_counter(replica) == top
        nxt = ctx.next_dot(replica)
        assert nxt == Dot(replica, top + 1)
        assert not ctx.contains(nxt)


def test_compaction_fills_a_gap_and_absorbs_the_cloud() -> None:
    ctx = CausalContext.from_dots([Dot("A", 1), Dot("A", 3), Dot("A", 4), Dot("A", 6)])
    assert ctx.vv == {"A": 1}
    assert ctx.cloud == {Dot("A", 3), Dot("A", 4), Dot("A", 6)}
    ctx.add(Dot("A", 2))
    assert ctx.vv == {"A": 4}
    assert ctx.cloud == {Dot("A", 6)}


def test_constructor_compacts_and_drops_covered_cloud_dots() -> None:
    ctx = CausalContext({"A": 2, "B": 0}, [Dot("A", 1), Dot("A", 3), Dot("B", 2)])
    assert ctx.vv == {"A": 3}
    assert ctx.cloud == {Dot("B", 2)}
    assert not ctx.is_empty()
    assert CausalContext().is_empty()


def test_copy_is_independent() -> None:
    ctx = CausalContext.from_dots([Dot("A", 1), Dot("B", 3)])
    clone = ctx.copy()
    clone.add(Dot("C", 1))
    assert not ctx.contains(Dot("C", 1))
    assert clone != ctx

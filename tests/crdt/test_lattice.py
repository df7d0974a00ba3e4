"""Join-semilattice laws and the delta law, on generated reachable states of every type."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import CausalContext, LWWRegister, MVRegister, ORSet, encode, join
from memmesh.crdt.testing import causal_contexts, elements, operations, states, values

KINDS = [ORSet, MVRegister, LWWRegister]
LAWS = settings(max_examples=60)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_join_is_commutative(kind: type[Any]) -> None:
    @LAWS
    @given(states(kind), states(kind))
    def check(a: Any, b: Any) -> None:
        ab, ba = join(a, b), join(b, a)
        assert ab == ba
        assert encode(ab) == encode(ba)

    check()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_join_is_associative(kind: type[Any]) -> None:
    @LAWS
    @given(states(kind), states(kind), states(kind))
    def check(a: Any, b: Any, c: Any) -> None:
        left, right = join(join(a, b), c), join(a, join(b, c))
        assert left == right
        assert encode(left) == encode(right)

    check()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_join_is_idempotent(kind: type[Any]) -> None:
    @LAWS
    @given(states(kind))
    def check(a: Any) -> None:
        assert join(a, a) == a
        b = a.copy()
        b.merge(b)
        assert b == a

    check()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_join_is_an_upper_bound_absorbing_its_parts(kind: type[Any]) -> None:
    @LAWS
    @given(states(kind), states(kind))
    def check(a: Any, b: Any) -> None:
        ab = join(a, b)
        assert join(ab, a) == ab
        assert join(ab, b) == ab

    check()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_join_mutates_neither_argument(kind: type[Any]) -> None:
    @LAWS
    @given(states(kind), states(kind))
    def check(a: Any, b: Any) -> None:
        before_a, before_b = encode(a), encode(b)
        join(a, b)
        assert encode(a) == before_a
        assert encode(b) == before_b

    check()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_delta_law_state_join_delta_equals_mutated_state(kind: type[Any]) -> None:
    @settings(max_examples=80)
    @given(states(kind), operations(kind))
    def check(state: Any, op: Any) -> None:
        before = state.copy()
        replica = ("r0", "r1", "r2")[op.replica]
        delta = op.mutate(state, replica)
        assert type(delta) is kind
        assert join(before, delta) == state
        # The delta alone, joined into any later state, changes nothing more.
        assert join(state, delta) == state

    check()


@settings(max_examples=80)
@given(causal_contexts(), causal_contexts(), causal_contexts())
def test_causal_context_merge_is_a_join(
    a: CausalContext, b: CausalContext, c: CausalContext
) -> None:
    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))
    assert join(a, a) == a
    assert set(join(a, b).dots()) == set(a.dots()) | set(b.dots())


@settings(max_examples=40)
@given(st.lists(elements(), max_size=6), st.lists(values(), max_size=4))
def test_copy_is_independent_of_the_original(items: list[Any], vals: list[Any]) -> None:
    s: ORSet[Any] = ORSet()
    for item in items:
        s.add(item, "r0")
    snapshot = s.copy()
    for item in items:
        s.remove(item, "r0")
    assert s.value == frozenset()
    assert snapshot.value == frozenset(items)

    m: MVRegister[Any] = MVRegister()
    for v in vals:
        m.write(v, "r0")
    mcopy = m.copy()
    m.clear("r1")
    assert m.value == ()
    assert mcopy.value == tuple(vals[-1:])

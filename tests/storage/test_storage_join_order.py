"""KeyState's join is a total, deterministic order: any states, any order, same bytes.

Issue 11 case 2: two states whose headers differed only in the replica of ``created``
packed to the same tie-break bytes, ``min`` kept its first argument, and replicas that
received them in opposite orders kept different bytes forever. The differential test
below joins adversarial variants of one key (each differing from a base state in one
field) in every order and every grouping and compares the canonical bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from keystate_strategies import KEY, key_states, valid, variants

from memmesh.crdt import Dot, Timestamp
from memmesh.storage.keystate import KIND_MEMORY, Header, KeyState, encode, join


def _trees(states: tuple[KeyState, ...]) -> Iterator[KeyState]:
    """The join of ``states`` (in this order) under every grouping."""
    if len(states) == 1:
        yield states[0]
        return
    for cut in range(1, len(states)):
        for left in _trees(states[:cut]):
            for right in _trees(states[cut:]):
                yield join(left, right)


def _all_orders_agree(states: list[KeyState]) -> None:
    outcomes = {encode(tree) for order in itertools.permutations(states)
                for tree in _trees(order)}
    assert len(outcomes) == 1, f"{len(outcomes)} different results"


@st.composite
def _family(draw: st.DrawFn) -> list[KeyState]:
    base = draw(key_states())
    assume(valid(base))
    count = draw(st.integers(2, 3))
    family = [base] + [draw(variants(base)) for _ in range(count)]
    assume(all(valid(s) for s in family))
    return family


@settings(max_examples=400)
@given(_family())
def test_joins_of_one_field_variants_give_the_same_bytes_in_every_order_and_grouping(
        family: list[KeyState]) -> None:
    _all_orders_agree(family)
    for state in family:
        assert encode(join(state, state)) == encode(state)


@settings(max_examples=200)
@given(st.data())
def test_keystate_join_is_a_semilattice(data: st.DataObject) -> None:
    policy = data.draw(st.sampled_from(("mv", "lww", "set", None)))
    a, b, c = (data.draw(key_states(policy)) for _ in range(3))
    assume(valid(a) and valid(b) and valid(c))
    assert encode(join(a, b)) == encode(join(b, a))
    assert encode(join(join(a, b), c)) == encode(join(a, join(b, c)))
    assert encode(join(a, a)) == encode(a)
    ab = join(a, b)
    assert encode(join(ab, a)) == encode(ab)


def _memory(created_by: str) -> KeyState:
    header = Header(KEY, KIND_MEMORY, None, None, None, None, "mv", "shared", False,
                    Timestamp(1_000, 0, created_by), None)
    return KeyState(header, {"ra": 1, "rb": 1}, False,
                    {Dot("ra", 1): ("text", None, None, 1_000, 0, 1.0, {}, 0, None, ())})


def test_headers_differing_only_in_the_creating_replica_join_commutatively() -> None:
    """Case 2 of issue 11, as a plain regression test."""
    a, b = _memory("ra"), _memory("rb")
    assert valid(a) and valid(b)
    assert encode(join(a, b)) == encode(join(b, a))

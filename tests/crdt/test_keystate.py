"""The memory key state (``memmesh.crdt.keystate``): lattice laws, the delta law of its
mutators, and a join that is a total, deterministic order whatever a peer ships.

Issue 11 case 2: two states whose headers differed only in the replica of ``created``
packed to the same tie-break bytes, ``min`` kept its first argument, and replicas that
received them in opposite orders kept different bytes forever. The differential test
joins adversarial variants of one key (each differing from a base state in one field)
in every order and every grouping and compares the canonical bytes (storage's codec:
the bytes the digest hashes).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from memmesh.crdt import Dot, InvalidArgumentError, Timestamp
from memmesh.crdt import keystate as ks
from memmesh.crdt.keystate import (
    KIND_MEMORY,
    KIND_SET,
    OP_ADD,
    OP_DELETE,
    OP_RESOLVE,
    OP_UPDATE,
    Header,
    KeyState,
    VersionData,
    join,
)
from memmesh.crdt.testing import DEFAULT_REPLICAS, key_state_variants, key_states
from memmesh.storage._keycodec import decode, encode

KEY = "k-0001"


def _trees(states: tuple[KeyState, ...]) -> Iterator[KeyState]:
    """The join of ``states`` (in this order) under every grouping."""
    if len(states) == 1:
        yield states[0]
        return
    for cut in range(1, len(states)):
        for left in _trees(states[:cut]):
            for right in _trees(states[cut:]):
                yield join(left, right)


@st.composite
def _family(draw: st.DrawFn) -> list[KeyState]:
    base = draw(key_states())
    return [base] + [draw(key_state_variants(base)) for _ in range(draw(st.integers(2, 3)))]


@settings(max_examples=400)
@given(_family())
def test_joins_of_one_field_variants_give_the_same_bytes_in_every_order_and_grouping(
        family: list[KeyState]) -> None:
    outcomes = {encode(tree) for order in itertools.permutations(family)
                for tree in _trees(order)}
    assert len(outcomes) == 1, f"{len(outcomes)} different results"
    for state in family:
        assert encode(join(state, state)) == encode(state)


@settings(max_examples=200)
@given(st.data())
def test_join_is_commutative_associative_idempotent_and_absorbs_its_parts(
        data: st.DataObject) -> None:
    policy = data.draw(st.sampled_from(("mv", "lww", "set", None)))
    a, b, c = (data.draw(key_states(policy)) for _ in range(3))
    before = encode(a), encode(b)
    assert encode(join(a, b)) == encode(join(b, a))
    assert encode(join(join(a, b), c)) == encode(join(a, join(b, c)))
    assert encode(join(a, a)) == encode(a)
    ab = join(a, b)
    assert encode(join(ab, a)) == encode(ab) == encode(join(ab, b))
    assert (encode(a), encode(b)) == before  # join mutates neither argument


def _memory(created_by: str) -> KeyState:
    header = Header(KEY, KIND_MEMORY, None, None, None, None, "mv", "shared", False,
                    Timestamp(1_000, 0, created_by), None)
    return KeyState(header, {"ra": 1, "rb": 1}, False,
                    {Dot("ra", 1): VersionData("text", None, None, 1_000, 0, 1.0, {}, OP_ADD)})


def test_headers_differing_only_in_the_creating_replica_join_commutatively() -> None:
    """Case 2 of issue 11, as a plain regression test."""
    a, b = _memory("ra"), _memory("rb")
    assert encode(join(a, b)) == encode(join(b, a))


# -- mutators ------------------------------------------------------------------------

Mutation = Callable[[KeyState], KeyState]


@st.composite
def _mutations(draw: st.DrawFn, state: KeyState) -> tuple[str, Mutation]:
    """A mutator applicable to the live ``state``, with a fresh dot of some origin."""
    origin = draw(st.sampled_from(DEFAULT_REPLICAS))
    dot = Dot(origin, state.ctx.get(origin, 0) + draw(st.integers(1, 3)))
    if state.header.kind == KIND_SET:
        element = draw(st.sampled_from(("a", "b", 7, ("t", 2))))
        return draw(st.sampled_from([
            ("set_add", lambda s: ks.set_add(s, element, dot)),
            ("set_remove", lambda s: ks.set_remove(s, element, dot)),
            ("forget", lambda s: ks.forget(s, dot)),
        ]))
    standing = sorted((d.replica, d.counter) for d, _ in state.standing())
    inputs = tuple(sorted(draw(st.sets(st.sampled_from(standing), min_size=1)))) \
        if standing else ()
    write = VersionData("new", "alice", None, 1_004, 0, 0.5, {"k": 1}, OP_UPDATE)
    choices: list[tuple[str, Mutation]] = [
        ("write", lambda s: ks.write(s, dot, write)),
        ("forget", lambda s: ks.forget(s, dot)),
    ]
    if inputs:
        resolved = write._replace(op=OP_RESOLVE, resolver="llm", inputs=inputs)
        choices.append(("resolve", lambda s: ks.write(s, dot, resolved)))
    if state.header.policy == "mv":
        choices.append(("clear", lambda s: ks.clear(s, dot)))
    else:
        deleted = VersionData(None, None, None, 1_004, 0, 1.0, {}, OP_DELETE)
        choices.append(("delete", lambda s: ks.write(s, dot, deleted)))
    return draw(st.sampled_from(choices))


@settings(max_examples=300)
@given(st.data())
def test_delta_law_state_join_mutated_state_is_the_mutated_state(data: st.DataObject) -> None:
    """Every mutator is an inflation: ``state ⊔ m(state) == m(state)`` (its delta is the
    new state), the new state is one a peer accepts, and joining the old state into it
    again changes nothing."""
    state = data.draw(key_states())
    assume(not state.forgotten)
    _, mutate = data.draw(_mutations(state))
    before = encode(state)
    after = mutate(state)
    assert encode(state) == before  # pure: the old state is untouched
    assert encode(join(state, after)) == encode(after) == encode(join(after, state))
    assert encode(decode(encode(after))) == encode(after)


@settings(max_examples=200)
@given(st.data())
def test_mutations_at_two_replicas_converge_in_either_order(data: st.DataObject) -> None:
    state = data.draw(key_states())
    assume(not state.forgotten)
    _, first = data.draw(_mutations(state))
    _, second = data.draw(_mutations(state))
    a, b = first(state), second(state)
    assert encode(join(a, b)) == encode(join(b, a))
    assert encode(join(join(a, b), state)) == encode(join(a, b))


def _mv(*versions: tuple[Dot, str]) -> KeyState:
    header = Header(KEY, KIND_MEMORY, None, None, None, None, "mv", "shared", False,
                    Timestamp(1_000, 0, "ra"), None)
    ctx: dict[str, int] = {}
    for dot, _ in versions:
        ctx[dot.replica] = max(ctx.get(dot.replica, 0), dot.counter)
    return KeyState(header, ctx, False, {dot: VersionData(text, None, None, 1_000, 0, 1.0, {},
                                                          OP_ADD) for dot, text in versions})


def test_a_resolution_supersedes_exactly_its_inputs() -> None:
    base = _mv((Dot("ra", 1), "one"), (Dot("rb", 1), "two"))
    concurrent = ks.write(base, Dot("rc", 1), base.body[Dot("ra", 1)]._replace(text="three"))
    resolution = VersionData("one and two", None, None, 1_001, 0, 1.0, {}, OP_RESOLVE, "llm",
                             (("ra", 1), ("rb", 1)))
    resolved = ks.write(base, Dot("ra", 2), resolution)
    assert [v.text for _, v in resolved.standing()] == ["one and two"]
    assert sorted(v.text for _, v in join(resolved, concurrent).standing()) == \
        ["one and two", "three"]


def test_an_mv_delete_removes_what_it_saw_and_a_concurrent_write_survives() -> None:
    base = _mv((Dot("ra", 1), "one"))
    deleted = ks.clear(base, Dot("ra", 2))
    written = ks.write(base, Dot("rb", 1), base.body[Dot("ra", 1)]._replace(text="two"))
    assert not deleted.live()
    assert [v.text for _, v in join(deleted, written).standing()] == ["two"]


def test_forget_absorbs_a_concurrent_write() -> None:
    base = _mv((Dot("ra", 1), "one"))
    forgotten = ks.forget(base, Dot("ra", 2))
    written = ks.write(base, Dot("rb", 1), base.body[Dot("ra", 1)]._replace(text="two"))
    merged = join(written, forgotten)
    assert merged.forgotten and not merged.body and not merged.live()


def test_a_set_add_wins_over_a_concurrent_remove() -> None:
    header = Header("tags", KIND_SET, None, None, None, None, "set", "shared", False, None,
                    None)
    base = ks.set_add(KeyState(header, {}, False, {}), "x", Dot("ra", 1))
    removed = ks.set_remove(base, "x", Dot("ra", 2))
    added = ks.set_add(base, "x", Dot("rb", 1))
    assert set(removed.body) == set()
    assert set(join(removed, added).body) == {"x"}


def test_mutators_refuse_a_stale_dot_an_unseen_input_and_a_forgotten_key() -> None:
    base = _mv((Dot("ra", 2), "one"))
    version = base.body[Dot("ra", 2)]
    with pytest.raises(InvalidArgumentError, match="fresh"):
        ks.write(base, Dot("ra", 2), version)
    unseen = version._replace(op=OP_RESOLVE, resolver="x", inputs=(("rb", 1),))
    with pytest.raises(InvalidArgumentError, match="has seen"):
        ks.write(base, Dot("ra", 3), unseen)
    with pytest.raises(InvalidArgumentError, match="forgotten"):
        ks.write(ks.forget(base, Dot("ra", 3)), Dot("ra", 4), version)
    with pytest.raises(InvalidArgumentError, match="lww"):
        ks.write(base, Dot("ra", 3), version._replace(op=OP_DELETE, text=None))

"""The state codec's element order without packing each element (issue 17, hot paths)
is the order of the elements' canonical bytes, so encoded states keep their bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from memmesh.crdt import ORSet, decode, encode, pack_canonical
from memmesh.crdt._codec import _canonical_order

# lengths around every msgpack str header boundary (fixstr 31, str8 255, str16)
_LENGTHS = st.sampled_from((0, 1, 2, 30, 31, 32, 33, 254, 255, 256, 257, 70_000))
_TEXTS = st.one_of(st.text(max_size=40),
                   st.builds(lambda n, c: c * n, _LENGTHS, st.sampled_from(("a", "z", "é", "€"))),
                   st.builds(lambda n, c: "a" * n + c, _LENGTHS, st.sampled_from(("b", "ÿ"))))


def _by_bytes(elements: list[Any]) -> list[Any]:
    return sorted(elements, key=pack_canonical)


@given(st.sets(_TEXTS, max_size=12))
def test_str_elements_are_ordered_by_their_canonical_bytes(elements: set[str]) -> None:
    assert _canonical_order(elements) == _by_bytes(list(elements))


@given(st.sets(st.one_of(_TEXTS, st.integers(-(2**63), 2**64 - 1), st.binary(max_size=40),
                         st.none()), max_size=12))
def test_mixed_elements_are_ordered_by_their_canonical_bytes(elements: set[Any]) -> None:
    assert _canonical_order(elements) == _by_bytes(list(elements))


@given(st.lists(_TEXTS, max_size=8))
def test_an_orset_of_texts_encodes_to_the_canonical_bytes_it_decodes_from(
        texts: list[str]) -> None:
    state: ORSet[str] = ORSet()
    for i, text in enumerate(texts):
        state.add(text, ("r1", "r2")[i % 2])
    data = encode(state)
    assert decode(data) == state and encode(decode(data)) == data


def _documented_orset_plain(state: ORSet[Any]) -> tuple[object, ...]:
    """docs/internals.md, section 1, built an element at a time: ``("ors", R, VV, CL,
    (element, (i, counter, ...), ...))``, elements by canonical bytes, dots in dot order."""
    table = tuple(sorted(set(state.context.vv) | {d.replica for d in state.context.cloud}))
    index = {replica: i for i, replica in enumerate(table)}
    vv = tuple(x for r in sorted(state.context.vv) for x in (index[r], state.context.vv[r]))
    cloud: list[object] = []
    for r in sorted({d.replica for d in state.context.cloud}):
        cloud += (index[r], tuple(sorted(d.counter for d in state.context.cloud
                                         if d.replica == r)))
    entries: list[object] = []
    for element in _by_bytes(list(state.entries)):
        dots = sorted(state.entries[element], key=lambda d: (d.replica, d.counter))
        entries += (element, tuple(x for d in dots for x in (index[d.replica], d.counter)))
    return ("ors", table, vv, tuple(cloud), tuple(entries))


@given(st.lists(st.tuples(st.sampled_from(("add", "remove")), st.sampled_from(("r1", "r2", "r3")),
                          st.one_of(_TEXTS, st.integers(0, 300))), max_size=16))
def test_orset_encoding_is_the_documented_plain_form_with_one_or_many_dots_per_element(
        ops: list[tuple[str, str, Any]]) -> None:
    # replicas that add concurrently (each its own copy, merged after) give an element
    # several dots; a remove puts dots in the cloud
    copies: dict[str, ORSet[Any]] = {}
    for op, replica, element in ops:
        copy = copies.setdefault(replica, ORSet())
        if op == "add":
            copy.add(element, replica)
        else:
            copy.remove(element, replica)
    state: ORSet[Any] = ORSet()
    for copy in copies.values():
        state.merge(copy)
    assert encode(state) == b"\x01" + pack_canonical(_documented_orset_plain(state))

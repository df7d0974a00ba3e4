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

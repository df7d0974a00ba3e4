"""Joins stay total when a faulty peer reuses a dot or a timestamp for other data.

``MVRegister.merge`` keeps the value with the lowest canonical bytes when both sides
hold one dot with different values; ``LWWRegister.merge`` breaks equal timestamps by
the canonical bytes of the values. Every order and grouping must give the same state.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import CausalContext, Dot, LWWRegister, MVRegister, Timestamp, encode, join
from memmesh.crdt.testing import values


def _every_grouping_agrees(states: list[Any]) -> None:
    results = set()
    for a, b, c in itertools.permutations(states):
        results.add(encode(join(join(a, b), c)))
        results.add(encode(join(a, join(b, c))))
    assert len(results) == 1


@settings(max_examples=150)
@given(st.lists(values(), min_size=3, max_size=3), st.integers(0, 2))
def test_mv_registers_holding_one_dot_with_different_values_join_in_any_order(
        vals: list[Any], removed: int) -> None:
    dot = Dot("r", 1)
    states = [MVRegister({dot: v}, CausalContext({"r": 1})) for v in vals]
    # one side may also have moved past the dot (observed-removed it)
    states[removed] = MVRegister({Dot("s", 1): "later"}, CausalContext({"r": 1, "s": 1})) \
        if removed == 2 else states[removed]
    _every_grouping_agrees(states)


@settings(max_examples=150)
@given(st.lists(values(), min_size=3, max_size=3))
def test_lww_registers_with_one_timestamp_and_different_values_join_in_any_order(
        vals: list[Any]) -> None:
    stamp = Timestamp(5, 0, "r")
    _every_grouping_agrees([LWWRegister(stamp, v) for v in vals])

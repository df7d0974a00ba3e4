"""The join of dot stores, shared by the OR-Set and the multi-value register.

Both types keep, next to a causal context, a store of the dots that are still alive
("dot kernel").  Joining two states keeps a dot when both stores hold it, or when one
store holds it and the other context has not seen it; a dot that one side has seen
but no longer holds was removed there, and removal wins over the stale copy
(Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018, section 6).
"""

from __future__ import annotations

from collections.abc import Iterable

from .causal_context import CausalContext
from .dot import Dot

__all__ = ["surviving"]


def surviving(
    ours: frozenset[Dot],
    theirs: frozenset[Dot] | None,
    our_context: CausalContext,
    their_context: CausalContext,
) -> frozenset[Dot]:
    """The dots of one key that survive the join of two dot stores."""
    if theirs is None:
        if their_context.is_empty():
            return ours
        return _unseen(ours, their_context, ours)
    if ours == theirs:
        return ours
    both = ours & theirs
    kept = set(both)
    kept.update(_unseen(ours - both, their_context, None))
    kept.update(_unseen(theirs - both, our_context, None))
    return frozenset(kept)


def _unseen(
    dots: Iterable[Dot], context: CausalContext, unchanged: frozenset[Dot] | None
) -> frozenset[Dot]:
    vv = context.vv
    cloud = context.cloud
    kept = [d for d in dots if d.counter > vv.get(d.replica, 0) and d not in cloud]
    if unchanged is not None and len(kept) == len(unchanged):
        return unchanged
    return frozenset(kept)

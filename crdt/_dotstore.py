"""The join of dot stores, shared by the OR-Set and the multi-value register.

Both types keep, next to a causal context, a store of the dots that are still alive
("dot kernel").  Joining two states keeps a dot when both stores hold it, or when one
store holds it and the other context has not seen it; a dot that one side has seen
but no longer holds was removed there, and removal wins over the stale copy
(Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018, section 6).

Merging a small delta into a large state must look at every entry of the state (a
delta's context may remove any of them).  :class:`Coverage` makes that look cheap:
most entries are settled by two dictionary lookups, without hashing dots.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, Self, TypeVar

from ._causal_context import CausalContext
from ._dot import Dot

__all__ = ["Coverage", "DotStore", "surviving", "unchecked"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
S = TypeVar("S", bound="DotStore[Any, Any]")


class DotStore(Generic[K, V]):
    """A causal context and the store of its live entries (elements to dots for the
    OR-Set, dots to values for the multi-value register)."""

    __slots__ = ("context", "entries")

    entries: dict[K, V]
    context: CausalContext

    def copy(self) -> Self:
        """An independent copy."""
        return unchecked(type(self), dict(self.entries), self.context.copy())


def unchecked(kind: type[S], entries: dict[Any, Any], context: CausalContext) -> S:
    """A ``kind`` state holding ``entries`` and ``context`` as they are, without the
    constructor's checks: for entries valid already (decoded and checked, or built by
    the mutators), so a join never fails on data it was given."""
    state = kind()
    state.entries = entries
    state.context = context
    return state

_NEVER = 1 << 64


class Coverage:
    """Fast membership tests against one causal context (which must not change)."""

    __slots__ = ("cloud", "empty", "floor", "vv")

    def __init__(self, context: CausalContext) -> None:
        self.vv = context.vv
        self.cloud = context.cloud
        floor: dict[str, int] = {}
        for dot in self.cloud:
            if dot.counter < floor.get(dot.replica, _NEVER):
                floor[dot.replica] = dot.counter
        self.floor = floor
        self.empty = not self.vv and not self.cloud

    def unseen(self, dots: frozenset[Dot]) -> frozenset[Dot]:
        """The dots of ``dots`` this context has not seen (``dots`` itself if all)."""
        vv, floor, cloud = self.vv, self.floor, self.cloud
        for dot in dots:
            counter, replica = dot.counter, dot.replica
            if counter <= vv.get(replica, 0) or (
                counter >= floor.get(replica, _NEVER) and dot in cloud
            ):
                break
        else:
            return dots
        return frozenset(
            d
            for d in dots
            if d.counter > vv.get(d.replica, 0)
            and not (d.counter >= floor.get(d.replica, _NEVER) and d in cloud)
        )


def surviving(
    ours: frozenset[Dot],
    theirs: frozenset[Dot] | None,
    our_coverage: Coverage,
    their_coverage: Coverage,
) -> frozenset[Dot]:
    """The dots of one key that survive the join of two dot stores."""
    if theirs is None:
        return ours if their_coverage.empty else their_coverage.unseen(ours)
    if ours == theirs:
        return ours
    both = ours & theirs
    kept = set(both)
    kept.update(their_coverage.unseen(ours - both))
    kept.update(our_coverage.unseen(theirs - both))
    return frozenset(kept)

"""The add-wins observed-remove set, without tombstones.

State: ``entries`` maps each present element to the dots of its live adds, ``context``
records every dot the state has seen (Almeida, Shoker, Baquero, "Delta State Replicated
Data Types", 2018, figure 9; the ORSWOT of Riak DT). A removed element leaves no
tombstone: its dots stay in the context and leave the entries, which is how a join
recognises the removal. Deltas are ``ORSet`` values whose context holds exactly the
dots they speak for (``add(e)``: ``{e: {new}}`` over ``{new} ∪ dots(e)``; ``remove(e)``:
nothing over ``dots(e)``), so they join correctly in any order, duplicated, without
causal delivery; a concurrent add and remove leave the element present (add wins).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import TypeVar

from ._canonical import check_element
from ._causal_context import CausalContext
from ._dot import Dot
from ._dotstore import Coverage, DotStore, surviving
from ._errors import InvalidArgumentError

__all__ = ["ORSet"]

E = TypeVar("E", bound=Hashable)


class ORSet(DotStore[E, frozenset[Dot]]):
    """Add-wins observed-remove set of plain hashable elements (see module doc).

    Elements are ``None``, ``str``, ``bytes``, ``int`` or tuples of these; lists are
    stored as tuples.  ``ORSet()`` is the empty state; ``a == b`` compares states.
    """

    __slots__ = ()

    def __init__(
        self,
        entries: Mapping[E, frozenset[Dot]] | None = None,
        context: CausalContext | None = None,
    ) -> None:
        self.entries = {}
        for element, dots in (entries or {}).items():
            if not all(isinstance(dot, Dot) for dot in dots):
                raise InvalidArgumentError("entries must map elements to sets of Dots")
            if dots:
                self.entries[check_element(element)] = frozenset(dots)  # type: ignore[index]
        self.context = CausalContext() if context is None else context.copy()

    # -- mutators (apply in place, return the delta) -------------------------------

    def add(self, element: E, replica: str) -> ORSet[E]:
        """Add ``element`` with a fresh dot of ``replica``; return the delta."""
        element = check_element(element)  # type: ignore[assignment]
        dot = self.context.next_dot(replica)
        old = self.entries.get(element, frozenset())
        delta: ORSet[E] = type(self)()
        delta.entries[element] = frozenset((dot,))
        delta.context = CausalContext.from_dots((dot, *old))
        self.entries[element] = frozenset((dot,))
        self.context.add(dot)
        return delta

    def remove(self, element: E, replica: str | None = None) -> ORSet[E]:
        """Remove the observed adds of ``element``; return the delta.

        With ``replica``, a fresh dot of that replica joins the delta's context (only
        the context), so the removal is an event that causal bookkeeping can see.
        Removing an absent element without ``replica`` returns an empty delta.
        """
        element = check_element(element)  # type: ignore[assignment]
        fresh = self.context.next_dot(replica) if replica is not None else None
        old = self.entries.pop(element, frozenset())
        delta: ORSet[E] = type(self)()
        delta.context = CausalContext.from_dots(old)
        if fresh is not None:
            delta.context.add(fresh)
            self.context.add(fresh)
        return delta

    # -- lattice -------------------------------------------------------------------

    def merge(self, other: ORSet[E]) -> None:
        """Join ``other`` into this state (in place)."""
        if not isinstance(other, ORSet):
            raise InvalidArgumentError(f"cannot merge an ORSet with {type(other).__name__}")
        if other is self:
            return
        ours, theirs = self.entries, other.entries
        our_cov, their_cov = Coverage(self.context), Coverage(other.context)
        merged: dict[E, frozenset[Dot]] = {}
        for element, dots in ours.items():
            kept = surviving(dots, theirs.get(element), our_cov, their_cov)
            if kept:
                merged[element] = kept
        for element, dots in theirs.items():
            if element not in ours:
                kept = surviving(dots, None, their_cov, our_cov)
                if kept:
                    merged[element] = kept
        self.entries = merged
        self.context.merge(other.context)

    # -- reading -------------------------------------------------------------------

    @property
    def value(self) -> frozenset[E]:
        """The elements present."""
        return frozenset(self.entries)

    def __contains__(self, element: object) -> bool:
        try:
            return element in self.entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[E]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ORSet):
            return NotImplemented
        return self.entries == other.entries and self.context == other.context

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ORSet(entries={self.entries!r}, context={self.context!r})"

"""The multi-value register: concurrent writes are all kept, a later write replaces them.

State: ``entries`` maps the dot of each standing write to its value; ``context`` holds
every dot seen (Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018,
figure 10; the dotted version vectors of Riak's siblings).  A write mints a fresh dot
and supersedes every write its replica has seen: its delta is ``{new: value}`` with
context ``{new} ∪ dots(entries)``.  Two writes that did not see each other both
survive the join, so ``value`` then holds two values until a write that has seen both
(or :meth:`MVRegister.clear`) collapses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ._canonical import freeze, packb, same_value
from ._causal_context import CausalContext
from ._dot import Dot
from ._dotstore import Coverage, DotStore, surviving
from ._errors import InvalidArgumentError

__all__ = ["MVRegister"]

V = TypeVar("V")


class MVRegister(DotStore[Dot, V]):
    """Multi-value register of plain values (see module doc).

    ``MVRegister()`` is the empty state; ``a == b`` compares states (values compare
    with their type: ``1`` and ``1.0`` differ, as their encodings do).
    """

    __slots__ = ()

    def __init__(
        self, entries: Mapping[Dot, V] | None = None, context: CausalContext | None = None
    ) -> None:
        self.entries = {}
        for dot, value in (entries or {}).items():
            if not isinstance(dot, Dot):
                raise InvalidArgumentError(f"entries must be keyed by Dots, got {dot!r:.40}")
            self.entries[dot] = freeze(value)  # type: ignore[assignment]
        self.context = CausalContext() if context is None else context.copy()

    # -- mutators (apply in place, return the delta) -------------------------------

    def write(self, value: V, replica: str) -> MVRegister[V]:
        """Replace every value seen with ``value`` under a fresh dot; return the delta."""
        frozen: V = freeze(value)  # type: ignore[assignment]
        dot = self.context.next_dot(replica)
        delta: MVRegister[V] = type(self)()
        delta.entries[dot] = frozen
        delta.context = CausalContext.from_dots((dot, *self.entries))
        self.entries = {dot: frozen}
        self.context.add(dot)
        return delta

    def clear(self, replica: str) -> MVRegister[V]:
        """Remove every value seen (observed-remove); return the delta.

        The delta's context holds the current dots and one fresh dot of ``replica``.
        """
        dot = self.context.next_dot(replica)
        delta: MVRegister[V] = type(self)()
        delta.context = CausalContext.from_dots((dot, *self.entries))
        self.entries = {}
        self.context.add(dot)
        return delta

    # -- lattice -------------------------------------------------------------------

    def merge(self, other: MVRegister[V]) -> None:
        """Join ``other`` into this state (in place)."""
        if not isinstance(other, MVRegister):
            raise InvalidArgumentError(f"cannot merge an MVRegister with {type(other).__name__}")
        if other is self:
            return
        ours, theirs = self.entries, other.entries
        kept = (
            surviving(
                frozenset(ours),
                frozenset(theirs) if theirs else None,
                Coverage(self.context),
                Coverage(other.context),
            )
            if ours
            else frozenset()
        )
        merged: dict[Dot, V] = {}
        for dot in kept:
            if dot in ours:
                value = ours[dot]
                if dot in theirs and not same_value(value, theirs[dot]):
                    # Only a faulty peer reuses a dot for another value; pick by bytes
                    # so the join stays commutative.
                    value = min(value, theirs[dot], key=packb)
                merged[dot] = value
        for dot, value in theirs.items():
            if dot not in ours and not self.context.contains(dot):
                merged[dot] = value
        self.entries = merged
        self.context.merge(other.context)

    # -- reading -------------------------------------------------------------------

    @property
    def value(self) -> tuple[V, ...]:
        """The standing values, ordered by their dots (deterministic on every replica)."""
        return tuple(self.entries[dot] for dot in sorted(self.entries))

    def items(self) -> tuple[tuple[Dot, V], ...]:
        """The standing ``(dot, value)`` pairs, ordered by dot."""
        return tuple((dot, self.entries[dot]) for dot in sorted(self.entries))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MVRegister):
            return NotImplemented
        if self.entries.keys() != other.entries.keys() or self.context != other.context:
            return False
        return all(same_value(v, other.entries[d]) for d, v in self.entries.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MVRegister(entries={dict(self.items())!r}, context={self.context!r})"

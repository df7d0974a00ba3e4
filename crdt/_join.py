"""``join(a, b)``: the least upper bound of two states, as a new state.

Every memmesh state type (``ORSet``, ``MVRegister``, ``LWWRegister``,
``CausalContext``) has an in-place ``merge`` that is commutative, associative and
idempotent; ``join`` copies ``a`` first, so neither argument is mutated.
"""

from __future__ import annotations

from typing import Protocol, Self, TypeVar

from ._errors import InvalidArgumentError

__all__ = ["Joinable", "join"]


class Joinable(Protocol):
    """A join-semilattice state with an in-place merge."""

    def copy(self) -> Self: ...

    def merge(self, other: Self, /) -> None: ...


S = TypeVar("S", bound=Joinable)


def join(a: S, b: S) -> S:
    """The join of ``a`` and ``b`` as a new state; mutates neither."""
    if type(a) is not type(b):
        raise InvalidArgumentError(f"cannot join {type(a).__name__} with {type(b).__name__}")
    result = a.copy()
    result.merge(b)
    return result

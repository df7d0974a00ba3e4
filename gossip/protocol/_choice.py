"""The round's peer pool over a large candidate list, as a view instead of a copy.

``SyncPolicy.round`` picks its anti-entropy peer uniformly among the candidates less a
few (itself, the peers it is already pulling from): Demers et al. 1987. Building that
pool as a list costs O(N) per round on every node, O(N^2) per round for a simulated
fleet of N. :class:`Excluding` is the same pool as a read-only sequence: its length and
``pool[i]`` cost O(excluded) (one ``candidates.index`` per excluded item, O(1) for a
sequence that keeps an index, such as the simulator's membership), so a uniform draw
``pool[rng.randrange(len(pool))]`` is the very same draw as over the copied list, and
only a caller that walks the pool pays O(N).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar, overload

__all__ = ["Excluding"]

_T = TypeVar("_T")


class Excluding(Sequence[_T]):
    """``[c for c in candidates if c not in excluded]``, without copying ``candidates``
    (which must be distinct, and must not change while the view is used)."""

    __slots__ = ("_candidates", "_skipped")

    def __init__(self, candidates: Sequence[_T], excluded: Iterable[_T]) -> None:
        skipped: set[int] = set()
        for item in excluded:
            try:
                skipped.add(candidates.index(item))
            except ValueError:
                continue
        self._candidates = candidates
        self._skipped = sorted(skipped)

    def __len__(self) -> int:
        return len(self._candidates) - len(self._skipped)

    @overload
    def __getitem__(self, i: int) -> _T: ...
    @overload
    def __getitem__(self, i: slice) -> list[_T]: ...
    def __getitem__(self, i: int | slice) -> _T | list[_T]:
        if isinstance(i, slice):
            return list(self)[i]
        size = len(self)
        k = i + size if i < 0 else i
        if not 0 <= k < size:
            raise IndexError("pool index out of range")
        for position in self._skipped:  # the k-th kept item: step over each skip before it
            if position > k:
                break
            k += 1
        return self._candidates[k]

    def __iter__(self) -> Iterator[_T]:
        skipped = set(self._skipped)
        return (c for position, c in enumerate(self._candidates) if position not in skipped)

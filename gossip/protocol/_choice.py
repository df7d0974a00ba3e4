"""A uniform random pick from a large candidate list, without copying the list.

``SyncPolicy.round`` picks its anti-entropy peer uniformly among the candidates less a
few (itself, the peers it is already pulling from): Demers et al. 1987. Building that
pool as a list costs O(N) per round on every node, O(N^2) per round for a simulated
fleet of N; :func:`pick_excluding` makes the very same draw (same ``randrange`` bound,
same result, same random stream afterwards) by skipping the excluded positions, at the
cost of one ``candidates.index`` per excluded item (O(1) for a sequence that keeps an
index, such as the simulator's membership).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypeVar

__all__ = ["pick_excluding"]

_T = TypeVar("_T")


def pick_excluding(candidates: Sequence[_T], excluded: Iterable[_T],
                   rng: random.Random) -> _T | None:
    """``pool[rng.randrange(len(pool))]`` where ``pool`` is ``candidates`` without the
    ``excluded`` items, in order; None when that pool is empty. ``candidates`` must be
    distinct (an excluded item is skipped at its one position)."""
    skipped: set[int] = set()
    for item in excluded:
        try:
            skipped.add(candidates.index(item))
        except ValueError:
            continue
    size = len(candidates) - len(skipped)
    if size <= 0:
        return None
    k = rng.randrange(size)
    for position in sorted(skipped):  # the k-th kept item: step over each skip before it
        if position > k:
            break
        k += 1
    return candidates[k]

"""Scope-aware choice of the anti-entropy partner (issue 17): pull from kin first.

A restricted member can only receive the keys of its scope, and only members allowed
some of those keys can hold them, so a uniformly random partner (Demers et al. 1987) is
useless to it most of the time in a fleet of many ACL classes (N=100 over 10 users: 9
useful peers of 99). Like interest-aware gossip (Lin and Marzullo's directional gossip,
1999, weighs partners by what they can pass on), a round picks uniformly among the
*kin*: peers whose scope (what we may serve them) overlaps the scope peers serve us,
and, with probability ``explore``, or when no kin is known, among all of them, so an
asymmetric or wrong ACL only slows a member down, never cuts it off. An unrestricted
member (or one not yet told its scope) chooses uniformly, exactly as before (no extra
random draw: unscoped runs are unchanged).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from memmesh.storage.wire import PeerScope, normal

__all__ = ["KinChoice", "overlaps"]


def overlaps(a: object, b: object) -> bool:
    """Whether some key could lie in both scopes (None: every key; a scope of another
    type than ``PeerScope`` is judged to overlap everything)."""
    if not isinstance(a, PeerScope) or not isinstance(b, PeerScope):
        return True
    na, nb = normal(a), normal(b)
    if na is None or nb is None:
        return True
    return any(p.intersect(q) is not None for p in na.patterns() for q in nb.patterns())


class KinChoice:
    """The partner choice of one node: :meth:`served` learns the scope we are served,
    :meth:`pick` chooses from a pool of peer ids."""

    __slots__ = ("_kin", "_served", "explore")

    def __init__(self, explore: float = 0.1) -> None:
        self.explore = explore
        self._served: PeerScope | None = None  # restricted scope we are served, if any
        self._kin: dict[str, bool] = {}  # peer id -> overlaps, for ``_served``

    @property
    def served_scope(self) -> PeerScope | None:
        """The restricted scope we were last served (None: unrestricted or untold)."""
        return self._served

    def served(self, scope: object) -> None:
        """A peer said it serves us ``scope`` (a payload's scope)."""
        restricted = normal(scope) if isinstance(scope, PeerScope) else None
        if restricted != self._served:
            self._served = restricted
            self._kin.clear()

    def forget(self, peer: str) -> None:
        """``peer``'s scope may have changed (a link registered with its credential)."""
        self._kin.pop(peer, None)

    def pick(self, pool: Sequence[str], scope_of: Callable[[str], object],
             rng: random.Random) -> str:
        """One peer of the non-empty ``pool``."""
        served = self._served
        if served is None or rng.random() < self.explore:
            return pool[rng.randrange(len(pool))]
        kin = self._kin
        close = [p for p in pool if kin.get(p) or (
            p not in kin and kin.setdefault(p, overlaps(scope_of(p), served)))]
        chosen = close or pool
        return chosen[rng.randrange(len(chosen))]

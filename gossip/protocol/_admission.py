"""Which connection goes when a cap is reached: pure rules the trio shell enforces.

* :class:`HandshakeGate`: at most ``cap`` connections in the TLS handshake; a new one
  evicts the oldest, so connections that never finish cannot lock a real peer out.
* :func:`expendable`: the idle link that did something useful longest ago (as a cache
  evicts), which a new peer replaces instead of being turned away.
* :func:`hoarders`: over the byte budget, the links holding the largest *partial*
  frames, largest first: a partial frame is held on a peer's word, while complete ones
  belong to syncs in progress and are bounded by each link's window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable

from ._peerlink import PeerLink

__all__ = ["HandshakeGate", "expendable", "hoarders"]


class HandshakeGate:
    """The connections still in their (TLS) handshake, oldest first, at most ``cap``."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("the handshake cap must be positive")
        self.cap = cap
        self._pending: OrderedDict[Hashable, None] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def admit(self, key: Hashable) -> Hashable | None:
        """Start tracking ``key``; returns the pending connection to drop, if any."""
        victim = None
        if len(self._pending) >= self.cap:
            victim, _ = self._pending.popitem(last=False)
            self.evicted += 1
        self._pending[key] = None
        return victim

    def done(self, key: Hashable) -> None:
        """The handshake of ``key`` finished (either way)."""
        self._pending.pop(key, None)


def expendable(links: Iterable[PeerLink]) -> PeerLink | None:
    """The idle link that was useful longest ago, or None when every link is busy."""
    idle = [lk for lk in links if lk.idle and not lk.closed]
    return min(idle, key=lambda lk: (lk.last_progress, lk.opened_at), default=None)


def hoarders(links: Iterable[PeerLink], budget: int) -> list[PeerLink]:
    """Links to drop so the bytes held for ``links`` fit ``budget`` (largest partial
    frame first; links without a partial frame are never chosen)."""
    live = [lk for lk in links if not lk.closed]
    total = sum(lk.held_bytes for lk in live)
    out: list[PeerLink] = []
    for lk in sorted(live, key=lambda lk: (-lk.session.buffered, lk.opened_at)):
        if total <= budget or not lk.session.buffered:
            break
        out.append(lk)
        total -= lk.held_bytes
    return out

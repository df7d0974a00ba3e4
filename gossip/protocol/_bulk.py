"""One bulk transfer at a time: a member far behind catches up from one peer.

A member that pulls the whole state from every peer at once (a new member dialling its
seeds, a member back from a long absence) downloads it once per peer: each peer streams
the same keys against the same summary (issue 17: 2 peers, 2.0x the state).  So, as
Cassandra's bootstrap streams each range from one source and Riak's handoff moves a
partition from one owner, a *bulk* pull holds a lease, one per node, and another bulk
pull waits for it (deferred, then started when the lease is free, against a summary
that the bulk transfer has advanced, so it ships only what is still missing).  Small
pulls never wait.

A pull is bulk when the peer's last known summary shows at least ``threshold`` events
we lack, when we know nothing of the peer and have not completed any pull yet (a member
that just started cannot tell how far behind it is), and when it continues a pull that
ended with ``more``.  An interrupted transfer resumes where it stopped: every applied
chunk commits its ``through`` claims, so the next pull's summary starts past it.  A
holder that made no progress (no chunk applied) for ``patience`` seconds yields the
lease, so a peer that went silent holds a joiner back no longer than that.
"""

from __future__ import annotations

from typing import Literal

from ._peerlink import PeerLink
from ._summary import watermarks

__all__ = ["BulkLease", "lag"]

Purpose = Literal["pull", "reply"]


def lag(ours: bytes | None, theirs: bytes) -> int | None:
    """Events the summary ``theirs`` holds beyond ``ours`` (None: ``theirs`` cannot be
    read; ``ours`` None or unreadable counts as empty)."""
    peer = watermarks(theirs)
    if peer is None:
        return None
    mine = (watermarks(ours) if ours is not None else None) or {}
    return sum(max(0, n - mine.get(origin, 0)) for origin, n in peer.items())


class BulkLease:
    """Which link holds this node's one bulk pull, and the pulls waiting for it.

    The holder's transfer runs while its link is open, our summary for a pull is
    being taken or a pull is running on it, and it made progress within ``patience``
    seconds; between the pulls of one transfer (a pull that ended with ``more`` and its
    follow-up) the policy keeps it running.
    """

    __slots__ = ("_deferred", "holder", "patience", "threshold")

    def __init__(self, threshold: int, patience: float) -> None:
        self.threshold = threshold
        self.patience = patience
        self.holder: PeerLink | None = None
        self._deferred: dict[PeerLink, Purpose] = {}

    def running(self, link: PeerLink, now: float) -> bool:
        """``link`` is taking our summary for a pull or running one, not stalled."""
        return link.open and (link.awaiting_summary or link.session.pulling) and \
            now - link.last_progress < self.patience

    def bulk(self, ours: bytes | None, theirs: bytes | None, *, synced: bool) -> bool:
        """Whether a pull from a peer whose last summary is ``theirs`` (None: unknown) is
        a bulk transfer for a replica whose last summary is ``ours``."""
        if theirs is None:
            return not synced
        behind = lag(ours, theirs)
        return behind is None or behind >= self.threshold

    def busy(self, link: PeerLink, now: float) -> bool:
        """Another link holds the lease and its transfer still runs."""
        holder = self.holder
        return holder is not None and holder is not link and self.running(holder, now)

    def acquire(self, link: PeerLink, purpose: Purpose, now: float) -> bool:
        """Take the lease for ``link``'s bulk pull; False: it is deferred until the lease
        is free."""
        if self.busy(link, now):
            self._deferred[link] = purpose
            return False
        self.holder = link
        self._deferred.pop(link, None)
        return True

    @property
    def deferred(self) -> int:
        return len(self._deferred)

    def settle(self, now: float) -> list[tuple[PeerLink, Purpose]]:
        """Free the lease once its transfer ended; the deferred pulls to start now (all
        of them: the first bulk one takes the lease again, the others defer again)."""
        if self.holder is not None and self.running(self.holder, now):
            return []
        self.holder = None
        waiting = list(self._deferred.items())
        self._deferred.clear()
        return waiting

    def forget(self, link: PeerLink) -> None:
        """``link`` is gone."""
        self._deferred.pop(link, None)
        if self.holder is link:
            self.holder = None

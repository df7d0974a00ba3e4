"""Per-peer counters kept by the sync policy across reconnects, in a bounded table.

Refusals are counted by reason (from ``ApplyResult.refused``), errors by reason (a link
closed by a protocol violation, a failed apply, a timeout...), completed syncs, bytes of
closed links, and digest repair's counts (repair pulls run, keys they repaired, claims
of the peer later proved false) beside its per-peer schedule (:mod:`._repair`).  A key
holder can present any number of ids, so the table keeps at most ``limit`` peers and
forgets the one seen longest ago that has no link.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from ._repair import PeerRepair

__all__ = ["PeerStats", "PeerTable"]


@dataclass(slots=True)
class PeerStats:
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    syncs: int = 0
    bytes_in: int = 0  # of links to this peer that have closed
    bytes_out: int = 0
    last_error: str | None = None
    last_sync: float | None = None  # when our last pull from it completed (policy clock)
    last_seen: float = 0.0
    repairs: int = 0  # digest repair pulls we ran with it
    repaired: int = 0  # keys those repairs fetched that changed our state
    false_claims: int = 0  # its watermark claims that a later state proved false
    repair: PeerRepair = field(default_factory=PeerRepair)


class PeerTable:
    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._stats: dict[str, PeerStats] = {}

    def __getitem__(self, peer: str) -> PeerStats:
        return self._stats[peer]

    def __contains__(self, peer: object) -> bool:
        return peer in self._stats

    def __iter__(self) -> Iterator[str]:
        return iter(self._stats)

    def get(self, peer: str) -> PeerStats | None:
        return self._stats.get(peer)

    def touch(self, peer: str, now: float, linked: Collection[str] = ()) -> PeerStats:
        """The stats of ``peer`` (created if new), marked seen at ``now``."""
        stats = self._stats.get(peer)
        if stats is None:
            if len(self._stats) >= self.limit:
                unlinked = [p for p in self._stats if p not in linked]
                if unlinked:
                    del self._stats[min(unlinked, key=lambda p: self._stats[p].last_seen)]
            stats = self._stats[peer] = PeerStats()
        stats.last_seen = max(stats.last_seen, now)
        return stats

    def totals(self) -> tuple[Counter[str], Counter[str]]:
        """Refusals and errors summed over every peer in the table."""
        refusals: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for stats in self._stats.values():
            refusals.update(stats.refusals)
            errors.update(stats.errors)
        return refusals, errors

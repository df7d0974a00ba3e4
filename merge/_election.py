"""Who resolves a conflict: the deterministic arbiter election and its takeover clock.

Without coordination, usually one replica resolves each conflict. The candidates are
the distinct members (base replica ids) that wrote the standing versions, ranked by
``sha256(memory_id | sorted dots | replica)``. Candidate 0 may resolve at once,
candidate ``i`` once it has seen that same conflict for ``i`` takeover waits, any other
member after ``len(candidates)`` waits, so a departed writer never leaves a conflict
open. Waits run on the member's own clock from its first sighting (another machine's
clock ahead would let two arbiters act at once) and double with every standing RESOLVE
(Ethernet's back-off), so a storm of concurrent resolutions dies out; the doubling stops
at :data:`MAX_BACKOFF` so the next arbiter still takes over in time.
"""

from __future__ import annotations

import hashlib
import threading

from memmesh.storage import MemoryRecord

__all__ = ["MAX_BACKOFF", "Election", "arbiter_rank", "takeover_wait"]

#: Most doublings of the takeover wait (32 x the deadline: 64 s by default).
MAX_BACKOFF = 5

#: Sightings kept before they are all dropped (mostly conflicts long resolved).
MAX_SIGHTINGS = 100_000

_Signature = tuple[str, tuple[tuple[str, int], ...]]


def arbiter_rank(record: MemoryRecord) -> list[str]:
    """The arbiter candidates of a conflicted record, in election order."""
    dots = ",".join(f"{v.dot.replica}:{v.dot.counter}" for v in
                    sorted(record.versions, key=lambda v: v.dot))
    candidates = sorted({v.replica for v in record.versions})
    return sorted(candidates, key=lambda r: hashlib.sha256(
        f"{record.id}|{dots}|{r}".encode()).digest())


def takeover_wait(record: MemoryRecord, deadline_ms: int) -> int:
    """The wait per election rank: ``deadline_ms``, doubled for every standing RESOLVE
    up to :data:`MAX_BACKOFF` times."""
    resolutions = sum(1 for v in record.versions if v.op == "RESOLVE")
    return deadline_ms << min(resolutions, MAX_BACKOFF)


def _signature(record: MemoryRecord) -> _Signature:
    return record.id, tuple(sorted((v.dot.replica, v.dot.counter) for v in record.versions))


class Election:
    """The election as one member runs it: its replica id and when it first saw each
    conflict (its own wall clock, in memory: a restarted member starts its waits again,
    which only delays a takeover). Thread-safe."""

    __slots__ = ("_lock", "_sightings", "replica_id")

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self._sightings: dict[_Signature, int] = {}
        self._lock = threading.Lock()

    def may_resolve(self, record: MemoryRecord, now_ms: int, *, deadline_ms: int) -> bool:
        """Whether this member may resolve ``record`` at ``now_ms`` (its own clock)."""
        ranked = arbiter_rank(record)
        try:
            position = ranked.index(self.replica_id)
        except ValueError:
            position = len(ranked)
        if position == 0:
            return True
        with self._lock:
            if len(self._sightings) > MAX_SIGHTINGS:
                self._sightings.clear()
            first = self._sightings.setdefault(_signature(record), now_ms)
        return now_ms >= first + position * takeover_wait(record, deadline_ms)

"""Conflict bookkeeping for resolvers: which memories are conflicted, who arbitrates.

The arbiter election is deterministic so that, without any coordination, usually one
replica resolves a conflict: the candidates are the distinct replicas that wrote the
standing versions (base replica ids, whatever incarnation minted the dots), ranked by
``sha256(memory_id | sorted dots | replica)``. Candidate 0 may resolve as soon as it
sees the conflict; candidate ``i`` once it has seen that same conflict (same standing
dots) for ``i * deadline_ms``, and any other replica after ``len(candidates) *
deadline_ms`` (so a departed writer cannot leave a conflict open forever).

The waiting is measured on each replica's own clock from when *it* first saw the
conflict, never against the versions' timestamps: those come from other machines'
clocks, and a takeover rule comparing them with the local clock lets a replica whose
clock runs minutes ahead take over at once, so two arbiters run concurrently and, with
a non-deterministic resolver, keep making new conflicts out of old ones (the
simulations' torture run found that livelock under ±5 min skew). Sightings are kept in
memory per ``Replica`` object: a restarted replica starts its wait again, which only
delays a takeover. Two replicas resolving at once stays harmless: the resolutions are
themselves concurrent versions and the next round resolves them.

The wait doubles with every RESOLVE among the standing versions (exponential back-off,
as Ethernet's after a collision): a conflict between resolutions means arbiters acted
at once because the fleet spreads news more slowly than ``deadline_ms``, and with a
fixed wait every generation makes as many concurrent resolutions as fit in the
propagation time: the torture run (100 nodes, 30 % loss, frames transport) found such a
storm keeping one memory conflicted for 200 rounds. Doubling makes the wait outgrow the
propagation time after a few generations, so the storm dies out; a first conflict
between ordinary writes keeps the short wait. The doubling stops at 32 times
``deadline_ms`` (64 s by default, several times the propagation time of that run): a
storm leaves many resolutions standing at once, and when the first-ranked writer has
left the fleet the next one must still take over in reasonable time (uncapped, 14
standing resolutions made each rank wait 2**14 deadlines: another torture seed never
converged).
"""

from __future__ import annotations

import hashlib
import threading

from .core import ReplicaCore
from .reads import _filters, to_record
from .records import MemoryRecord

__all__ = ["MAX_BACKOFF", "ConflictOps", "arbiter_rank", "takeover_wait"]

#: Most doublings of the takeover wait (32 x ``deadline_ms``).
MAX_BACKOFF = 5


def arbiter_rank(record: MemoryRecord) -> list[str]:
    """The arbiter candidates of a conflicted record, in election order."""
    dots = ",".join(f"{v.dot.replica}:{v.dot.counter}" for v in
                    sorted(record.versions, key=lambda v: v.dot))
    candidates = sorted({v.replica for v in record.versions})
    return sorted(candidates, key=lambda r: hashlib.sha256(
        f"{record.id}|{dots}|{r}".encode()).digest())


def takeover_wait(record: MemoryRecord, deadline_ms: int) -> int:
    """The wait per election rank: ``deadline_ms``, doubled for every standing RESOLVE
    up to :data:`MAX_BACKOFF` times (see the module doc)."""
    resolutions = sum(1 for v in record.versions if v.op == "RESOLVE")
    return deadline_ms << min(resolutions, MAX_BACKOFF)


def _signature(record: MemoryRecord) -> tuple[str, tuple[tuple[str, int], ...]]:
    return record.id, tuple(sorted((v.dot.replica, v.dot.counter) for v in record.versions))


class ConflictOps(ReplicaCore):
    """Conflict listing and the arbiter election."""

    #: when this replica first saw each conflict (memory id + standing dots), local ms
    _sightings: dict[tuple[str, tuple[tuple[str, int], ...]], int]
    _sightings_lock: threading.Lock

    def conflicts(self, **scope_filters: str | None) -> list[MemoryRecord]:
        """Live memories (matching the filters) with more than one standing version."""
        filters = _filters(scope_filters)
        now = self._clock()
        out: list[MemoryRecord] = []
        with self._env.read() as txn:
            for ikey, _ in txn.prefix("conflict", b""):
                _, _, state = self._load(txn, ikey.decode())
                if state is None:
                    continue
                if any(getattr(state.header, k) != v for k, v in filters.items()):
                    continue
                record = to_record(state, state.standing(), now)
                if record is not None and record.conflicted:
                    out.append(record)
        out.sort(key=lambda r: (r.updated_at, r.id))
        return out

    def arbiter_for(self, record: MemoryRecord, now_ms: int, *, deadline_ms: int) -> bool:
        """Whether this replica may resolve ``record`` now (see module doc); ``now_ms`` is
        this replica's own wall clock."""
        ranked = arbiter_rank(record)
        try:
            position = ranked.index(self.replica_id)
        except ValueError:
            position = len(ranked)
        if position == 0:
            return True
        with self._sightings_lock:
            if len(self._sightings) > 100_000:  # mostly resolved conflicts: start afresh
                self._sightings.clear()
            first = self._sightings.setdefault(_signature(record), now_ms)
        return now_ms >= first + position * takeover_wait(record, deadline_ms)

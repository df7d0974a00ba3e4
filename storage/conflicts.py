"""Conflict bookkeeping for resolvers: which memories are conflicted, who arbitrates.

The arbiter election is deterministic so that, without any coordination, usually one
replica resolves a conflict: the candidates are the distinct replicas that wrote the
standing versions, ranked by ``sha256(memory_id | sorted dots | replica)``; candidate
``i`` may resolve once ``now >= newest version wall_ms + i * deadline_ms``, and after
``len(candidates) * deadline_ms`` any replica may (so a departed writer cannot leave a
conflict open forever). Two replicas resolving at once is harmless: the resolutions
are themselves concurrent versions and the next round resolves them.
"""

from __future__ import annotations

import hashlib

from .core import ReplicaCore
from .reads import _filters, to_record
from .records import MemoryRecord

__all__ = ["ConflictOps", "arbiter_rank"]


def arbiter_rank(record: MemoryRecord) -> list[str]:
    """The arbiter candidates of a conflicted record, in election order."""
    dots = ",".join(f"{v.dot.replica}:{v.dot.counter}" for v in
                    sorted(record.versions, key=lambda v: v.dot))
    candidates = sorted({v.replica for v in record.versions})
    return sorted(candidates, key=lambda r: hashlib.sha256(
        f"{record.id}|{dots}|{r}".encode()).digest())


class ConflictOps(ReplicaCore):
    """Conflict listing and the arbiter election."""

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
        """Whether this replica may resolve ``record`` now (see module doc)."""
        ranked = arbiter_rank(record)
        newest = max(v.timestamp.wall_ms for v in record.versions)
        try:
            position = ranked.index(self.replica_id)
        except ValueError:
            position = len(ranked)
        return now_ms >= newest + position * deadline_ms

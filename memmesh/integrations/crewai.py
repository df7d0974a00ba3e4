"""``MemmeshCrewStorage``: CrewAI's unified-memory ``StorageBackend`` on a replica
(extra ``crewai``).

``Memory(storage=MemmeshCrewStorage(replica))`` keeps a crew's memories in a memmesh
replica, so a gossip node shares them with every process of the fleet, with no vector
database in between. It follows the published backends (``LanceDBStorage``,
``QdrantEdgeStorage``): search is cosine over the vectors crewai computed, scope prefixes
(hierarchical paths, whole components), categories (any) and metadata (every key equal)
filter exactly, ``save`` of a known id and ``update`` replace the record, and ``delete``
ANDs its criteria as Qdrant does. Each record is one memory (``_crew_records``): crewai's
scope path is kept with it, and ``scope`` maps a path onto memmesh's scope fields (by
default ``/agent/<role>`` -> ``agent_id``) so peer access lists apply. Concurrent edits
of one record are a memmesh conflict; reads show the newest standing version until a
resolver or the next ``update`` settles it. ``touch_records`` (recall's access time) is
local, never replicated. Details: docs/crewai.md.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from crewai.memory.storage.backend import EmbeddingDimensionMismatchError
from crewai.memory.types import MemoryRecord, ScopeInfo

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.storage import Replica

from ._crew_records import MARK, CrewEntry, mark_of, matches, normalise_prefix, utc, vector_of
from ._crew_view import BaseScope, CrewView

__all__ = ["EmbeddingDimensionError", "MemmeshCrewStorage", "agent_scope"]

ScopeFn = Callable[[str], Mapping[str, str | None]]
#: aux namespace of the local access times (``touch_records``)
TOUCHED = "crewai-touched"
_MS = struct.Struct(">q")


class EmbeddingDimensionError(EmbeddingDimensionMismatchError, MemmeshError):
    """A vector's dimension differs from the store's: crewai's own error (what its
    callers catch), and a memmesh error."""


def agent_scope(path: str) -> dict[str, str | None]:
    """The default scope mapping: crewai's ``.../agent/<role>/...`` paths (what a crew's
    agents save under) set memmesh's ``agent_id`` to the role; other paths set nothing."""
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts[:-1]):
        if part == "agent":
            return {"agent_id": parts[i + 1]}
    return {}


def _dims(vectors: list[np.ndarray | None]) -> set[int]:
    return {len(v) for v in vectors if v is not None}


class MemmeshCrewStorage:
    """A crewai ``StorageBackend`` whose records live in ``replica`` (module docstring).

    ``app_id``/``user_id``/``agent_id``: the base scope of every record (only records of
    this scope are seen or deleted; ``reset()`` never touches other apps' memories).
    ``scope``: crewai scope path -> extra memmesh scope fields (``agent_id``,
    ``user_id``; default :func:`agent_scope`; None for none). ``policy``: ``"mv"``
    (default: concurrent edits kept as a conflict for a resolver) or ``"lww"``.
    ``actor``: recorded on every write. ``tier``: ``"shared"`` (default) or ``"private"``
    (records never leave this replica; crewai's own ``private`` flag is a recall filter
    and is kept as data either way).
    """

    def __init__(
        self,
        replica: Replica,
        *,
        app_id: str | None = "crewai",
        user_id: str | None = None,
        agent_id: str | None = None,
        scope: ScopeFn | None = agent_scope,
        policy: str = "mv",
        actor: str | None = None,
        tier: str = "shared",
    ) -> None:
        if policy not in ("mv", "lww"):
            raise InvalidArgumentError('policy must be "mv" or "lww"')
        if tier not in ("shared", "private"):
            raise InvalidArgumentError('tier must be "shared" or "private"')
        self.replica = replica
        self.base_scope: BaseScope = {}
        if app_id is not None:
            self.base_scope["app_id"] = app_id
        if user_id is not None:
            self.base_scope["user_id"] = user_id
        if agent_id is not None:
            self.base_scope["agent_id"] = agent_id
        self.scope_fn = scope
        self.policy = policy
        self.actor = actor
        self.tier = tier
        self._view = CrewView(replica, self.base_scope)
        self._lock = threading.RLock()
        self._owned = False

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> MemmeshCrewStorage:
        """Open (or create) the replica at ``path`` and a storage on it; :meth:`close`
        (which crewai's ``Memory.close()`` calls) closes the replica. ``options``: this
        class's keywords, the rest go to :meth:`Replica.open`."""
        names = ("app_id", "user_id", "agent_id", "scope", "policy", "actor", "tier")
        mine = {k: options.pop(k) for k in names if k in options}
        replica = Replica.open(path, **options)
        try:
            storage = cls(replica, **mine)
        except BaseException:
            replica.close()
            raise
        storage._owned = True
        return storage

    def close(self) -> None:
        """Close the replica if :meth:`open` opened it (a replica handed in stays open)."""
        if self._owned:
            self._owned = False
            self.replica.close()

    # -- helpers --------------------------------------------------------------------------

    def _scope_of(self, path: str) -> dict[str, str | None]:
        base = self.base_scope
        scope: dict[str, str | None] = {"app_id": base.get("app_id"),
                                        "user_id": base.get("user_id"),
                                        "agent_id": base.get("agent_id")}
        if self.scope_fn is None:
            return scope
        extra = dict(self.scope_fn(path))
        unknown = set(extra) - {"user_id", "agent_id"}
        if unknown:
            raise InvalidArgumentError(f"scope() may set only user_id and agent_id, "
                                       f"not {sorted(unknown)}")
        for name, value in extra.items():
            if name not in self.base_scope:  # the store's own scope wins
                scope[name] = value
        return scope

    def _entries(self, prefix: str | None) -> list[CrewEntry]:
        self._view.refresh()
        return [e for e in self._view.entries() if matches(e, prefix, None, None)]

    def _touched(self, entry: CrewEntry) -> datetime | None:
        raw = self.replica.aux_get(TOUCHED, entry.crew_id.encode())
        if raw is None or len(raw) != _MS.size:
            return None
        # naive UTC, as crewai stamps its own times
        return datetime.fromtimestamp(_MS.unpack(raw)[0] / 1000, UTC).replace(tzinfo=None)

    def _record(self, entry: CrewEntry) -> MemoryRecord:
        return entry.record(self._touched(entry))

    def _check_dims(self, dims: set[int]) -> None:
        if not dims:
            return
        stored = _dims([e.vector for e in self._view.entries()])
        if len(dims) > 1:
            first, *rest = sorted(dims)
            raise EmbeddingDimensionError(first, rest[0])
        if stored and not dims <= stored:
            raise EmbeddingDimensionError(min(stored), next(iter(dims)))

    def _write(self, records: list[MemoryRecord]) -> None:
        """Insert or replace ``records`` in one transaction, after checking all of them
        (of several with one id, the last one)."""
        records = list({r.id: r for r in records}.values())
        vectors = [vector_of(r.embedding) for r in records]
        with self._lock:
            self._view.refresh()
            self._check_dims(_dims(vectors))
            plans = [(r, mark_of(r, v), self._scope_of(r.scope))
                     for r, v in zip(records, vectors, strict=True)]
            replica = self.replica
            with replica.batch():
                for record, mark, scope in plans:
                    current = self._view.current(record.id)
                    metadata = {MARK: mark}
                    if current is not None and current.scope_fields == {
                            k: scope.get(k) for k in current.scope_fields}:
                        replica.update(current.memory_id, record.content, actor=self.actor,
                                       confidence=float(record.importance),
                                       metadata=metadata)
                        keep = current.memory_id
                    else:  # new, or its memmesh scope moved: the header is immutable
                        keep = replica.add(record.content, actor=self.actor,
                                           confidence=float(record.importance),
                                           metadata=metadata, policy=self.policy,
                                           tier=self.tier, app_id=scope.get("app_id"),
                                           user_id=scope.get("user_id"),
                                           agent_id=scope.get("agent_id"))
                    for memory_id in self._view.memories(record.id):
                        if memory_id != keep:
                            replica.delete(memory_id)
            self._view.refresh()

    # -- the StorageBackend protocol ---------------------------------------------------------

    def save(self, records: list[MemoryRecord]) -> None:
        """Store ``records``; a record whose id is stored already replaces it (upsert)."""
        if records:
            self._write(list(records))

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (insert it when absent, as LanceDB does);
        on a conflicted record this write supersedes every standing version."""
        self._write([record])

    def touch_records(self, record_ids: list[str]) -> None:
        """Set ``last_accessed`` to now for ``record_ids`` on this replica only: an access
        time is local bookkeeping, and replicating it would turn every recall into a write
        (and two readers into a conflict)."""
        now = _MS.pack(int(self.replica.clock()))
        with self._lock:
            self._view.refresh()
            for record_id in record_ids:
                if self._view.current(record_id) is not None:
                    self.replica.aux_put(TOUCHED, str(record_id).encode(), now)

    def get_record(self, record_id: str) -> MemoryRecord | None:
        with self._lock:
            self._view.refresh()
            entry = self._view.current(record_id)
            return None if entry is None else self._record(entry)

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """The ``limit`` best records by cosine similarity to ``query_embedding`` with
        a score of at least ``min_score``, best first, after the exact filters."""
        query = vector_of(query_embedding)
        if query is None:
            raise InvalidArgumentError("query_embedding must not be empty")
        with self._lock:
            prefix = normalise_prefix(scope_prefix)
            self._view.refresh()
            stored = _dims([e.vector for e in self._view.entries()])
            if stored and len(query) not in stored:
                raise EmbeddingDimensionError(min(stored), len(query))
            q_norm = float(np.linalg.norm(query))
            scored: list[tuple[float, CrewEntry]] = []
            for entry in self._view.entries():
                if not matches(entry, prefix, categories, metadata_filter):
                    continue
                if entry.vector is None or len(entry.vector) != len(query) \
                        or entry.norm == 0.0 or q_norm == 0.0:
                    score = 0.0
                else:
                    score = float(entry.vector @ query) / (entry.norm * q_norm)
                if score >= min_score:
                    scored.append((score, entry))
            scored.sort(key=lambda pair: (-pair[0], pair[1].crew_id))
            return [(self._record(e), s) for s, e in scored[:max(limit, 0)]]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Delete the records that meet every given criterion (all records of this
        store's scope when none is given); return how many."""
        with self._lock:
            prefix = normalise_prefix(scope_prefix)
            self._view.refresh()
            wanted = None if record_ids is None else set(record_ids)
            doomed = [e for e in self._view.entries()
                      if (wanted is None or e.crew_id in wanted)
                      and matches(e, prefix, categories, metadata_filter, older_than)]
            if not doomed:
                return 0
            with self.replica.batch():
                for entry in doomed:
                    for memory_id in self._view.memories(entry.crew_id):
                        self.replica.delete(memory_id)
            self._view.refresh()
            return len(doomed)

    def list_records(self, scope_prefix: str | None = None, limit: int = 200,
                     offset: int = 0) -> list[MemoryRecord]:
        """Records in a scope, newest (``created_at``) first."""
        if limit <= 0 or offset < 0:
            return []
        with self._lock:
            entries = self._entries(normalise_prefix(scope_prefix))
            entries.sort(key=lambda e: (utc(e.created_at), e.crew_id), reverse=True)
            return [self._record(e) for e in entries[offset:offset + limit]]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        path = normalise_prefix(scope) or "/"
        with self._lock:
            entries = self._entries(None if path == "/" else path)
        created = [e.created_at for e in entries]
        return ScopeInfo(
            path=path, record_count=len(entries),
            categories=sorted({c for e in entries for c in e.categories}),
            oldest_record=min(created, key=utc, default=None),
            newest_record=max(created, key=utc, default=None),
            child_scopes=self._children(path, entries))

    @staticmethod
    def _children(path: str, entries: list[CrewEntry]) -> list[str]:
        base = "" if path == "/" else path
        depth = len([p for p in base.split("/") if p])
        children = set()
        for entry in entries:
            parts = [p for p in entry.scope.split("/") if p]
            if len(parts) > depth:
                children.add(f"{base}/{parts[depth]}")
        return sorted(children)

    def list_scopes(self, parent: str = "/") -> list[str]:
        """The immediate child scopes of ``parent`` that hold records."""
        path = normalise_prefix(parent) or "/"
        with self._lock:
            entries = self._entries(None if path == "/" else path)
        return self._children(path, entries)

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        with self._lock:
            entries = self._entries(normalise_prefix(scope_prefix))
        counts: dict[str, int] = {}
        for entry in entries:
            for category in entry.categories:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        with self._lock:
            return len(self._entries(normalise_prefix(scope_prefix)))

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every record in ``scope_prefix`` (None: every record of this store's
        scope; other apps' memories in the replica are left alone)."""
        self.delete(scope_prefix=scope_prefix)

    # -- asyncio: LMDB never blocks the loop --------------------------------------------------

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return await asyncio.to_thread(self.search, query_embedding, scope_prefix,
                                       categories, metadata_filter, limit, min_score)

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return await asyncio.to_thread(self.delete, scope_prefix, categories, record_ids,
                                       older_than, metadata_filter)

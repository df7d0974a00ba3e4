"""CrewAI ``MemoryRecord`` <-> memmesh memory, and the filters crewai's backends apply.

A crewai record is one memmesh memory: ``content`` is the memory's text, ``importance``
its confidence, and the rest (crewai's id, scope path, categories, metadata, timestamps,
source, private flag, the embedding crewai computed) is kept under the ``"crewai"`` key
of the version's metadata, so it replicates with the text and every version of a
conflicted memory carries its own. Embeddings are little-endian float32 bytes, as
LanceDB and Qdrant store them. Scope prefixes match whole path components, as
``QdrantEdgeStorage``'s ancestor filter does (``/crew`` covers ``/crew/x``, not
``/crewai``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from crewai.memory.types import MemoryRecord

from memmesh.crdt import InvalidArgumentError, freeze
from memmesh.integrations._records import plain
from memmesh.storage import MemoryRecord as StoredRecord
from memmesh.storage import Version

__all__ = ["MARK", "CrewEntry", "in_scope", "mark_of", "matches", "normalise_prefix",
           "utc", "vector_of"]

#: The metadata key under which a version keeps its crewai fields.
MARK = "crewai"



def vector_of(embedding: list[float] | None) -> np.ndarray | None:
    """crewai's embedding as a float32 vector; None for a missing or empty one."""
    if not embedding:
        return None
    vector = np.asarray(embedding, dtype=np.float32)
    if vector.ndim != 1 or not np.all(np.isfinite(vector)):
        raise InvalidArgumentError("an embedding must be a flat list of finite numbers")
    return vector


def mark_of(record: MemoryRecord, vector: np.ndarray | None) -> dict[str, Any]:
    """The ``"crewai"`` metadata of ``record``; :class:`InvalidArgumentError` when its
    metadata is not JSON-like plain data (nothing is written then)."""
    try:
        metadata = freeze(dict(record.metadata))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"crewai metadata must be JSON-like data: {exc}") from exc
    return {
        "id": record.id,
        "scope": record.scope,
        "categories": [str(c) for c in record.categories],
        "metadata": metadata,
        "created_at": record.created_at.isoformat(),
        "last_accessed": record.last_accessed.isoformat(),
        "source": record.source,
        "private": bool(record.private),
        "vector": None if vector is None else vector.astype("<f4").tobytes(),
    }


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (crewai stamps naive UTC), so naive and aware compare."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class CrewEntry:
    """The crewai view of one memory: its newest standing version (all replicas agree
    on which that is), the vector crewai gave, and whether a conflict stands."""

    __slots__ = ("categories", "conflicted", "content", "created_at", "crew_id", "importance",
                 "last_accessed", "memory_id", "metadata", "norm", "private", "scope",
                 "scope_fields", "source", "updated", "vector")

    def __init__(self, stored: StoredRecord, version: Version, mark: Mapping[str, Any]) -> None:
        self.memory_id = stored.id
        self.scope_fields = {"app_id": stored.app_id, "user_id": stored.user_id,
                             "agent_id": stored.agent_id}
        self.updated = stored.updated_at
        self.conflicted = stored.conflicted
        # a peer's bytes are untrusted even when they decode: check every field's shape
        # (a ValueError makes ``of`` treat the memory as not a crewai record)
        self.crew_id = _typed(mark["id"], str)
        self.content = version.text
        self.importance = float(version.confidence)
        self.scope = _typed(mark.get("scope", "/"), str)
        categories = _typed(mark.get("categories", ()), tuple)
        self.categories: list[str] = [_typed(c, str) for c in categories]
        self.metadata: dict[str, Any] = plain(_typed(mark.get("metadata", {}), dict))
        self.created_at = datetime.fromisoformat(_typed(mark["created_at"], str))
        self.last_accessed = datetime.fromisoformat(
            _typed(mark.get("last_accessed", mark["created_at"]), str))
        source = mark.get("source")
        self.source = None if source is None else _typed(source, str)
        self.private = bool(mark.get("private", False))
        raw = mark.get("vector")
        self.vector = None if raw is None or raw == b"" else \
            np.frombuffer(_typed(raw, bytes), dtype="<f4")
        self.norm = 0.0 if self.vector is None else float(np.linalg.norm(self.vector))

    @classmethod
    def of(cls, stored: StoredRecord | None) -> CrewEntry | None:
        """The entry of a stored memory, or None when it is not a crewai record."""
        if stored is None or not stored.versions:
            return None
        version = max(stored.versions, key=lambda v: v.timestamp)
        mark = version.metadata.get(MARK)
        if not isinstance(mark, Mapping) or "id" not in mark or "created_at" not in mark:
            return None
        try:
            return cls(stored, version, mark)
        except (TypeError, ValueError):  # a version some other writer shaped: not ours
            return None

    def record(self, last_accessed: datetime | None = None) -> MemoryRecord:
        """The crewai record (``last_accessed``: a later local touch, if any)."""
        seen = self.last_accessed
        if last_accessed is not None and utc(last_accessed) > utc(seen):
            seen = last_accessed
        return MemoryRecord(
            id=self.crew_id, content=self.content, scope=self.scope,
            categories=list(self.categories), metadata=plain(self.metadata),
            importance=min(max(self.importance, 0.0), 1.0), created_at=self.created_at,
            last_accessed=seen,
            embedding=None if self.vector is None else [float(x) for x in self.vector],
            source=self.source, private=self.private)


def normalise_prefix(scope_prefix: str | None) -> str | None:
    """``"/a/b"`` for any spelling of a scope prefix; None for "everything"."""
    if scope_prefix is None:
        return None
    parts = [p for p in scope_prefix.split("/") if p]
    return "/" + "/".join(parts) if parts else None


def in_scope(scope: str, prefix: str | None) -> bool:
    """Whether ``scope`` is ``prefix`` or below it (``prefix`` from normalise_prefix)."""
    if prefix is None:
        return True
    path = normalise_prefix(scope) or "/"
    return path == prefix or path.startswith(prefix + "/")


def matches(entry: CrewEntry, prefix: str | None, categories: list[str] | None,
            metadata_filter: Mapping[str, Any] | None,
            older_than: datetime | None = None) -> bool:
    """crewai's filters: scope prefix, any of ``categories``, every metadata key equal,
    created strictly before ``older_than``."""
    if not in_scope(entry.scope, prefix):
        return False
    if categories and not any(c in entry.categories for c in categories):
        return False
    if metadata_filter and not all(entry.metadata.get(k) == v
                                   for k, v in metadata_filter.items()):
        return False
    return older_than is None or utc(entry.created_at) < utc(older_than)

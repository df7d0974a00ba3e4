"""What merge policy needs of a replica: a small protocol, so merge depends on the
replica's conflict calls and not on the whole ``memmesh.storage.Replica``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from memmesh.crdt import Dot
from memmesh.storage import MemoryRecord, Version

__all__ = ["ConflictReplica"]


class ConflictReplica(Protocol):
    """The calls :func:`~memmesh.merge.resolve_conflicts` makes (``Replica`` has them)."""

    @property
    def replica_id(self) -> str: ...

    @property
    def clock(self) -> Callable[[], int]: ...

    def conflicts(self, **scope_filters: str | None) -> list[MemoryRecord]: ...

    def resolve(self, memory_id: str, text: str, *, resolver: str, inputs: tuple[Dot, ...],
                actor: str | None = None, confidence: float | None = None,
                metadata: Mapping[str, Any] | None = None,
                role: str | None = None) -> Version: ...

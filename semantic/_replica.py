"""The replica as the semantic layer sees it: small structural protocols, not ``Any``.

:class:`memmesh.storage.Replica` satisfies them; the index needs its change journal
(to stay current), its reads, ``add``/``delete``/``record_noop`` (near-duplicate
folding), its wall clock (expiry judged as storage judges it) and the local-only aux
store (the embedding cache, :class:`._cache.AuxStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from ._cache import AuxStore

__all__ = ["IndexedReplica", "JournalChange", "JournalPage"]


class JournalChange(Protocol):
    """One entry of the change journal (``storage.Change``)."""

    @property
    def memory_id(self) -> str: ...


class JournalPage(Protocol):
    """A page of the change journal (``storage.ChangeBatch``): ``reset`` when the journal
    was truncated past the asked position (rescan)."""

    @property
    def seq(self) -> int: ...

    @property
    def changes(self) -> Sequence[JournalChange]: ...

    @property
    def reset(self) -> bool: ...


class IndexedReplica(AuxStore, Protocol):
    """What :class:`~memmesh.semantic.SemanticIndex` uses of a replica.  Records
    (``MemoryRecord``) are read by attribute: ``id``, scope fields, ``tier``,
    ``created_at``, ``versions``, ``expires_at``."""

    @property
    def replica_id(self) -> str: ...

    @property
    def clock(self) -> Callable[[], int]: ...

    def journal_seq(self) -> int: ...

    def changes_since(self, seq: int, limit: int = ...) -> JournalPage: ...

    def get(self, memory_id: str) -> Any | None: ...

    def pages(self, size: int = ...) -> Iterable[Sequence[Any]]: ...

    def add(self, text: str, *, actor: str | None = ..., **options: Any) -> str: ...

    def delete(self, memory_id: str, *, actor: str | None = ...,
               detail: Mapping[str, Any] | None = ...) -> object: ...

    def record_noop(self, memory_id: str, *, actor: str | None = ...,
                    detail: Mapping[str, Any] | None = ...) -> object: ...

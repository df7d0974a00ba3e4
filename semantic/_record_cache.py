"""``RecordCache``: the records search hits were built from, kept until the journal
names them again, each with what a hit needs from it worked out once.

A hit carries its ``MemoryRecord``, and reading one from the replica (an LMDB read
and a full decode) costs more than scoring thousands of rows; memories that answer one
query tend to answer the next. The index reads each hit's record through this bounded
LRU map and drops an entry whenever the change journal names its memory (the same
follower that keeps the rows current, before every search), so a cached record is
never older than the row that found it. Expiry writes nothing to the journal: the
index still checks each record's expiry against its clock. An entry
(:class:`CachedRecord`) also holds the record's scope, expiry and visibility and, for
each of the memory's rows, the standing version that row was indexed from, with its
wall time and its query-independent score parts, so building a hit re-checks the
record without a decode, a ``getattr`` per field, a dot comparison or a trust lookup.
A memory's rows change only through the journal, which drops its entry first, so the
row map stays true for the entry's life.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._rows import SCOPE_FIELDS

RECORD_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class CachedVersion:
    """One standing version and the parts of its score that no query changes."""

    version: Any
    timestamp_ms: float
    confidence_part: float
    trust_part: float


@dataclass(frozen=True, slots=True)
class CachedRecord:
    """A record as a hit re-checks it: scope values (in ``SCOPE_FIELDS`` order), expiry
    (inf: none), hidden here (another replica's private memory), and by row the
    standing version each of the memory's rows holds (a row whose version the record
    no longer stands by is absent: the record moved on since the row was indexed)."""

    record: Any
    scope: tuple[str | None, ...]
    expires_ms: float
    hidden: bool
    rows: dict[int, CachedVersion]

    def in_scope(self, scope: Iterable[tuple[int, str | None]]) -> bool:
        """Every ``(field index, value)`` pair of ``scope`` holds."""
        return all(self.scope[column] == value for column, value in scope)


def scope_of(record: Any) -> tuple[str | None, ...]:
    """A record's scope values, in ``SCOPE_FIELDS`` order."""
    return tuple(getattr(record, name, None) for name in SCOPE_FIELDS)


class RecordCache:
    """Up to ``size`` entries made by ``read`` (a memory id to its :class:`CachedRecord`,
    None when gone), least recently used first out. Not thread-safe: the index calls it
    under its lock."""

    def __init__(self, read: Callable[[str], CachedRecord | None],
                 size: int = RECORD_CACHE_SIZE) -> None:
        self._read = read
        self._size = size
        self._records: OrderedDict[str, CachedRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, memory_id: str) -> CachedRecord | None:
        """The entry of ``memory_id`` (None: gone); a miss reads the replica."""
        entry = self._records.get(memory_id)
        if entry is not None:
            self._records.move_to_end(memory_id)
            return entry
        entry = self._read(memory_id)
        if entry is not None and self._size:
            self._records[memory_id] = entry
            if len(self._records) > self._size:
                self._records.popitem(last=False)
        return entry

    def drop(self, memory_ids: Iterable[str]) -> None:
        """Forget the records of memories that changed (or left)."""
        for memory_id in memory_ids:
            self._records.pop(memory_id, None)

    def clear(self) -> None:
        self._records.clear()

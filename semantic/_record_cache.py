"""``RecordCache``: the records search hits were built from, kept until the journal
names them again.

A hit carries its ``MemoryRecord``, and reading one from the replica (an LMDB read
and a full decode) costs more than scoring thousands of rows; memories that answer one
query tend to answer the next. The index reads each hit's record through this bounded
LRU map and drops an entry whenever the change journal names its memory (the same
follower that keeps the rows current, before every search), so a cached record is
never older than the row that found it. Expiry writes nothing to the journal: the
index still checks each record's ``expires_at`` against its clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

RECORD_CACHE_SIZE = 4096


class RecordCache:
    """Up to ``size`` records read by ``read`` (``replica.get``), least recently used
    first out. Not thread-safe: the index calls it under its lock."""

    def __init__(self, read: Callable[[str], Any | None], size: int = RECORD_CACHE_SIZE
                 ) -> None:
        self._read = read
        self._size = size
        self._records: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, memory_id: str) -> Any | None:
        """The record of ``memory_id`` (None: gone); a miss reads the replica."""
        record = self._records.get(memory_id)
        if record is not None:
            self._records.move_to_end(memory_id)
            return record
        record = self._read(memory_id)
        if record is not None and self._size:
            self._records[memory_id] = record
            if len(self._records) > self._size:
                self._records.popitem(last=False)
        return record

    def drop(self, memory_ids: Iterable[str]) -> None:
        """Forget the records of memories that changed (or left)."""
        for memory_id in memory_ids:
            self._records.pop(memory_id, None)

    def clear(self) -> None:
        self._records.clear()

"""Columnar in-memory storage of indexed versions (one row per standing version).

Rows live in preallocated numpy columns that double when full; removed rows go to a
free list and are reused, so updates never shift other rows. Scope values are coded as
small integers per field (code 0 is "no value"), which turns a scope filter into one
vectorised integer comparison. Counters of hidden and secondary rows and a lower
bound on the earliest expiry let an unfiltered search skip building a row mask when
every row is a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SCOPE_FIELDS: tuple[str, ...] = ("app_id", "user_id", "agent_id", "run_id")
NONE_CODE = 0


@dataclass(frozen=True, slots=True)
class RowData:
    """Everything stored for one version: its vector and the columns ranking reads."""

    vector: npt.NDArray[np.float32]
    scope: tuple[str | None, ...]
    tier: str
    expires_ms: float
    timestamp_ms: float
    prior: float
    hidden: bool
    secondary: bool
    single: bool
    dot: Any
    metadata: Any = None  # the version's metadata mapping, for metadata filters
    content: bytes = b""  # the text's content key (its embedding cache entry)


class RowStore:
    """Growable columns plus the memory-id <-> rows maps."""

    def __init__(self, dimension: int, capacity: int = 1024) -> None:
        self.dimension = dimension
        self.size = 0  # rows in use or freed: the high-water mark
        self.free: list[int] = []
        self.vectors = np.zeros((capacity, dimension), dtype=np.float32)
        self.alive = np.zeros(capacity, dtype=bool)
        self.hidden = np.zeros(capacity, dtype=bool)
        self.secondary = np.zeros(capacity, dtype=bool)  # not the first row of its memory
        self.single = np.zeros(capacity, dtype=bool)  # its memory has exactly one version
        self.scope = np.zeros((capacity, len(SCOPE_FIELDS) + 1), dtype=np.int32)  # + tier
        self.expires = np.full(capacity, np.inf, dtype=np.float64)
        self.timestamps = np.zeros(capacity, dtype=np.float64)
        self.prior = np.zeros(capacity, dtype=np.float32)
        self.stamp = np.zeros(capacity, dtype=np.int64)  # `writes` when the row was put
        self.writes = 0  # bumped by every put and remove (derived structures resync)
        self.owner: list[str | None] = [None] * capacity
        self.dots: list[Any] = [None] * capacity
        self.metadata: list[Any] = [None] * capacity
        self.content: list[bytes] = [b""] * capacity
        self.rows_of: dict[str, list[int]] = {}
        self.hidden_rows = 0  # alive rows that are hidden
        self.secondary_rows = 0  # alive rows that are not their memory's first
        self.earliest_expiry = np.inf  # <= every alive row's expiry (never raised)
        self.codes: list[dict[str | None, int]] = [
            {None: NONE_CODE} for _ in range(len(SCOPE_FIELDS) + 1)
        ]

    @property
    def capacity(self) -> int:
        return int(self.alive.shape[0])

    def code(self, column: int, value: str | None, *, create: bool = False) -> int | None:
        """The integer code of ``value`` in scope column ``column`` (None if unseen)."""
        codes = self.codes[column]
        found = codes.get(value)
        if found is None and create:
            found = codes[value] = len(codes)
        return found

    def _grow(self) -> None:
        new = self.capacity * 2
        pad = new - self.capacity

        def grow(array: np.ndarray, fill: float | bool | int) -> np.ndarray:
            shape = (pad, *array.shape[1:])
            return np.concatenate([array, np.full(shape, fill, dtype=array.dtype)])

        self.vectors = grow(self.vectors, 0.0)
        self.alive = grow(self.alive, False)
        self.hidden = grow(self.hidden, False)
        self.secondary = grow(self.secondary, False)
        self.single = grow(self.single, False)
        self.scope = grow(self.scope, 0)
        self.expires = grow(self.expires, np.inf)
        self.timestamps = grow(self.timestamps, 0.0)
        self.prior = grow(self.prior, 0.0)
        self.stamp = grow(self.stamp, 0)
        self.owner.extend([None] * pad)
        self.dots.extend([None] * pad)
        self.metadata.extend([None] * pad)
        self.content.extend([b""] * pad)

    def _slot(self) -> int:
        if self.free:
            return self.free.pop()
        if self.size == self.capacity:
            self._grow()
        self.size += 1
        return self.size - 1

    def remove(self, memory_id: str) -> list[bytes]:
        """Drop every row of ``memory_id`` (no-op when it has none), its vectors zeroed;
        the content keys of its texts."""
        dropped = []
        self.writes += 1
        for row in self.rows_of.pop(memory_id, ()):
            self.hidden_rows -= bool(self.hidden[row])
            self.secondary_rows -= bool(self.secondary[row])
            self.alive[row] = False
            self.vectors[row] = 0.0
            self.owner[row] = None
            self.dots[row] = None
            self.metadata[row] = None
            dropped.append(self.content[row])
            self.content[row] = b""
            self.free.append(row)
        return dropped

    def put(self, memory_id: str, rows: list[RowData]) -> None:
        """Replace the rows of ``memory_id`` with ``rows``."""
        self.remove(memory_id)
        slots = []
        for data in rows:
            row = self._slot()
            slots.append(row)
            self.vectors[row] = data.vector
            self.alive[row] = True
            self.hidden[row] = data.hidden
            self.secondary[row] = data.secondary
            self.single[row] = data.single
            for column, value in enumerate((*data.scope, data.tier)):
                code = self.code(column, value, create=True)
                assert code is not None
                self.scope[row, column] = code
            self.expires[row] = data.expires_ms
            self.stamp[row] = self.writes
            self.hidden_rows += data.hidden
            self.secondary_rows += data.secondary
            self.earliest_expiry = min(self.earliest_expiry, data.expires_ms)
            self.timestamps[row] = data.timestamp_ms
            self.prior[row] = data.prior
            self.owner[row] = memory_id
            self.dots[row] = data.dot
            self.metadata[row] = data.metadata
            self.content[row] = data.content
        if slots:
            self.rows_of[memory_id] = slots

    def clear(self) -> None:
        for memory_id in list(self.rows_of):
            self.remove(memory_id)
        self.earliest_expiry = np.inf

    def all_candidates(self, now_ms: float) -> bool:
        """Every row up to ``size`` is alive, visible and unexpired at ``now_ms``."""
        return (not self.free and not self.hidden_rows and self.earliest_expiry > now_ms)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows_of.values())

"""Conflict listing: the live memories with more than one standing version.

Kept in the ``conflict`` index (:mod:`._indexes`), so listing costs what is conflicted,
not what is stored. Who resolves a conflict, and how, is merge policy
(:mod:`memmesh.merge`); storage writes the resolution (``Replica.resolve``).
"""

from __future__ import annotations

from collections.abc import Callable

from ._env import Env
from ._keystore import load
from ._reads import current_record, scope_filters
from ._records import MemoryRecord

__all__ = ["Conflicts"]


class Conflicts:
    """Conflict listing."""

    def __init__(self, env: Env, clock: Callable[[], int]) -> None:
        self._env = env
        self._clock = clock

    def conflicts(self, **scope: str | None) -> list[MemoryRecord]:
        """Live memories (matching the filters) with more than one standing version."""
        filters = scope_filters(scope)
        now = self._clock()
        out: list[MemoryRecord] = []
        with self._env.read() as txn:
            for ikey, _ in txn.prefix("conflict", b""):
                _, _, state = load(txn, ikey.decode())
                if state is None:
                    continue
                if any(getattr(state.header, k) != v for k, v in filters.items()):
                    continue
                record = current_record(txn, state, now)
                if record is not None and record.conflicted:
                    out.append(record)
        out.sort(key=lambda r: (r.updated_at, r.id))
        return out

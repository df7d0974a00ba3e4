"""The crewai records of a replica, kept current from its change journal.

Every read first catches up with the replica's change journal through storage's
``JournalFollower`` (local writes, other processes on the same directory, and what
gossip applied from peers), reloading only the memories that changed; a journal reset
(entries dropped, or a cursor beyond the journal's end) rescans the scope. One
crewai id may name several memories for a while (two replicas re-created a record under
a new scope at once): the current one is the memory updated last, which every replica
agrees on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict

from memmesh.storage import JournalFollower, Replica

from ._crew_records import CrewEntry

__all__ = ["BaseScope", "CrewView"]

JOURNAL_PAGE = 1000


class BaseScope(TypedDict, total=False):
    """The memmesh scope every record of one storage carries (the fields it sets)."""

    app_id: str
    user_id: str
    agent_id: str


class CrewView:
    """The crewai entries of ``replica`` within ``base_scope`` (not thread-safe: the
    storage serialises calls)."""

    def __init__(self, replica: Replica, base_scope: BaseScope) -> None:
        self.replica = replica
        self.base_scope = base_scope
        self._entries: dict[str, CrewEntry] = {}  # memory id -> entry
        self._by_crew_id: dict[str, set[str]] = {}  # crewai id -> memory ids
        self._follower = JournalFollower(replica, page=JOURNAL_PAGE)  # starts with a rescan

    def refresh(self) -> None:
        """Catch up with the replica's change journal."""
        self._follower.catch_up(self._reload, self._rescan)

    def _reload(self, memory_ids: list[str]) -> None:
        for memory_id in memory_ids:
            self._load(memory_id)

    def _rescan(self) -> None:
        self._entries.clear()
        self._by_crew_id.clear()
        for stored in self.replica.list(**self.base_scope):
            self._keep(stored.id, CrewEntry.of(stored))

    def _load(self, memory_id: str) -> None:
        stored = self.replica.get(memory_id)
        if stored is not None and any(getattr(stored, k) != v
                                      for k, v in self.base_scope.items()):
            stored = None
        self._keep(memory_id, CrewEntry.of(stored))

    def _keep(self, memory_id: str, entry: CrewEntry | None) -> None:
        old = self._entries.pop(memory_id, None)
        if old is not None:
            ids = self._by_crew_id[old.crew_id]
            ids.discard(memory_id)
            if not ids:
                del self._by_crew_id[old.crew_id]
        if entry is not None:
            self._entries[memory_id] = entry
            self._by_crew_id.setdefault(entry.crew_id, set()).add(memory_id)

    def memories(self, crew_id: str) -> list[str]:
        """Every memory id that holds ``crew_id`` (usually one)."""
        return sorted(self._by_crew_id.get(crew_id, ()))

    def current(self, crew_id: str) -> CrewEntry | None:
        """The record's current entry: its memory updated last."""
        ids = self._by_crew_id.get(crew_id)
        if not ids:
            return None
        return max((self._entries[i] for i in ids), key=lambda e: e.updated)

    def entries(self) -> Iterator[CrewEntry]:
        """The current entry of every record."""
        for crew_id in self._by_crew_id:
            entry = self.current(crew_id)
            if entry is not None:
                yield entry

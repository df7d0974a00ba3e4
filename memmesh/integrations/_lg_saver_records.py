"""The record layer under ``MemmeshSaver``: write-once OR-Set keys and their indexes.

Each checkpoint, channel blob and pending write is its own replica key, named by a hash
of its identity, holding an add-wins OR-Set (Almeida, Shoker, Baquero 2018) with one
element, the serde bytes. A thread's index set lists its records by entry
(``("c", ns, checkpoint_id)``, ``("b", ns, channel, version)``,
``("w", ns, checkpoint_id, task_id, idx)``), one set lists the threads, and one set per
run id lists that run's checkpoints as ``(thread_id, ns, checkpoint_id)``. Removal is
observed-remove: what another replica adds concurrently survives (add wins).

Every key is created with the saver's scope (``app_id``, ``user_id``, ``agent_id``) and
the scope is part of each key's identity, so savers of two scopes on one replica never
share a key, and a peer's ``PeerScope`` decides which threads it receives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from memmesh.storage import Replica

__all__ = ["SCOPE_FIELDS", "Element", "Records"]

#: The scope fields a saver's records carry (``run_id`` would make them private).
SCOPE_FIELDS = ("app_id", "user_id", "agent_id")

_PREFIX = "langgraph.checkpoint/"

Element = tuple[Any, ...]


def _key(*identity: str | int | None) -> str:
    """The memmesh key of one record: a hash, so any thread id or namespace fits."""
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return _PREFIX + digest


class Records:
    """The saver's records in ``replica``."""

    def __init__(self, replica: Replica, scope: Mapping[str, str | None]) -> None:
        self.replica = replica
        self.scope = dict(scope)
        self._scope_id = tuple(self.scope.get(f) for f in SCOPE_FIELDS)
        self._threads = _key(*self._scope_id, "threads")

    # -- reads -------------------------------------------------------------------------

    def read(self, thread_id: str, entry: Element) -> Element | None:
        """The record of ``entry``; the least by repr if concurrent writers disagreed."""
        members = self.replica.set_members(self._record_key(thread_id, entry))
        if not members:
            return None
        return min(members, key=repr)  # type: ignore[no-any-return]

    def exists(self, thread_id: str, entry: Element) -> bool:
        return bool(self.replica.set_members(self._record_key(thread_id, entry)))

    def entries(self, thread_id: str) -> frozenset[Element]:
        entries: frozenset[Element] = self.replica.set_members(self._index_key(thread_id))
        return entries

    def threads(self) -> frozenset[str]:
        threads: frozenset[str] = self.replica.set_members(self._threads)
        return threads

    def run(self, run_id: str) -> frozenset[Element]:
        """The ``(thread_id, ns, checkpoint_id)`` of the checkpoints of ``run_id``."""
        refs: frozenset[Element] = self.replica.set_members(self._run_key(run_id))
        return refs

    # -- writes ------------------------------------------------------------------------

    def write(self, thread_id: str, entry: Element, record: Element) -> None:
        """Replace the record of ``entry`` and index it under its thread."""
        key = self._record_key(thread_id, entry)
        for old in self.replica.set_members(key) - {record}:
            self.replica.set_remove(key, old)
        self._add(key, record)
        self._add(self._index_key(thread_id), entry)
        self._add(self._threads, thread_id)

    def add_run(self, run_id: str, thread_id: str, ns: str, checkpoint_id: str) -> None:
        self._add(self._run_key(run_id), (thread_id, ns, checkpoint_id))

    def remove_run(self, run_id: str, thread_id: str, ns: str, checkpoint_id: str) -> None:
        self.replica.set_remove(self._run_key(run_id), (thread_id, ns, checkpoint_id))

    def drop(self, thread_id: str, entries: Iterable[Element]) -> None:
        """Remove the records of ``entries`` and their index entries; a thread left
        without records leaves the thread set."""
        index = self._index_key(thread_id)
        for entry in entries:
            key = self._record_key(thread_id, entry)
            for record in self.replica.set_members(key):
                self.replica.set_remove(key, record)
            self.replica.set_remove(index, entry)
        if not self.replica.set_members(index):
            self.replica.set_remove(self._threads, thread_id)

    # -- keys --------------------------------------------------------------------------

    def _add(self, key: str, element: Any) -> None:
        self.replica.set_add(key, element, **self.scope)

    def _record_key(self, thread_id: str, entry: Element) -> str:
        return _key(*self._scope_id, entry[0], thread_id, *entry[1:])

    def _index_key(self, thread_id: str) -> str:
        return _key(*self._scope_id, "thread", thread_id)

    def _run_key(self, run_id: str) -> str:
        return _key(*self._scope_id, "run", run_id)

"""Removing and copying checkpoints under ``MemmeshSaver``: ``delete_for_runs``,
``prune`` and ``copy_thread`` over the record layer (:mod:`._lg_saver_records`).

Dropping checkpoints removes their observed OR-Set elements, their pending writes, their
run-index entries, and then the channel blobs no remaining checkpoint of the namespace
references. ``keep_latest`` keeps, per namespace, the newest checkpoint and the
ancestors its ``DeltaChannel`` values are rebuilt from: the parent chain up to a
checkpoint holding a value of every channel in the kept checkpoint's
``counters_since_delta_snapshot`` (the walk of
``BaseCheckpointSaver.get_delta_channel_history``), so pruning never empties a delta
channel. A copy re-adds the same write-once records under the target thread's keys.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from ._lg_saver_records import Records

__all__ = ["Upkeep"]


class Upkeep:
    """Maintenance of the records of ``MemmeshSaver`` (see the module docstring)."""

    def __init__(self, records: Records, serde: SerializerProtocol) -> None:
        self.records = records
        self.serde = serde

    # -- reading a checkpoint record ---------------------------------------------------

    def checkpoints(self, thread_id: str) -> dict[str, list[str]]:
        """The thread's checkpoint ids per namespace, oldest first."""
        found: dict[str, list[str]] = {}
        for entry in self.records.entries(thread_id):
            if entry[0] == "c":
                found.setdefault(entry[1], []).append(entry[2])
        return {ns: sorted(ids) for ns, ids in found.items()}

    def metadata(self, thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
        saved = self.records.read(thread_id, ("c", ns, checkpoint_id))
        if saved is None:
            return {}
        metadata: dict[str, Any] = self.serde.loads_typed((saved[2], saved[3]))
        return metadata

    def _versions_and_parent(self, thread_id: str, ns: str,
                             checkpoint_id: str) -> tuple[dict[str, Any], str | None]:
        saved = self.records.read(thread_id, ("c", ns, checkpoint_id))
        if saved is None:
            return {}, None
        checkpoint = self.serde.loads_typed((saved[0], saved[1]))
        return dict(checkpoint["channel_versions"]), saved[4]

    def _valued(self, thread_id: str, ns: str, versions: dict[str, Any]) -> set[str]:
        """The channels whose blob at its version holds a value (not ``empty``)."""
        valued = set()
        for channel, version in versions.items():
            blob = self.records.read(thread_id, ("b", ns, channel, str(version)))
            if blob is not None and blob[0] != "empty":
                valued.add(channel)
        return valued

    # -- removal -----------------------------------------------------------------------

    def drop_checkpoints(self, thread_id: str, ns: str, ids: Collection[str]) -> None:
        """Remove checkpoints ``ids`` of ``ns``, their writes, and orphaned blobs."""
        if not ids:
            return
        self._unindex_runs(thread_id, ns, ids)
        entries = self.records.entries(thread_id)
        doomed = [e for e in entries
                  if e[0] in ("c", "w") and e[1] == ns and e[2] in ids]
        self.records.drop(thread_id, doomed)
        referenced: set[tuple[str, str]] = set()
        for checkpoint_id in self.checkpoints(thread_id).get(ns, []):
            versions, _ = self._versions_and_parent(thread_id, ns, checkpoint_id)
            referenced.update((ch, str(v)) for ch, v in versions.items())
        self.records.drop(thread_id, [
            e for e in self.records.entries(thread_id)
            if e[0] == "b" and e[1] == ns and (e[2], e[3]) not in referenced])

    def _unindex_runs(self, thread_id: str, ns: str, ids: Iterable[str]) -> None:
        """Take checkpoints ``ids`` out of the index sets of their runs."""
        for checkpoint_id in ids:
            run_id = self.metadata(thread_id, ns, checkpoint_id).get("run_id")
            if isinstance(run_id, str):
                self.records.remove_run(run_id, thread_id, ns, checkpoint_id)

    def delete_thread(self, thread_id: str) -> None:
        for ns, ids in self.checkpoints(thread_id).items():
            self._unindex_runs(thread_id, ns, ids)
        self.records.drop(thread_id, self.records.entries(thread_id))

    def delete_for_runs(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            by_thread: dict[tuple[str, str], set[str]] = {}
            for thread_id, ns, checkpoint_id in self.records.run(run_id):
                by_thread.setdefault((thread_id, ns), set()).add(checkpoint_id)
            for (thread_id, ns), ids in sorted(by_thread.items()):
                self.drop_checkpoints(thread_id, ns, ids)

    def keep_latest(self, thread_id: str) -> None:
        for ns, ids in self.checkpoints(thread_id).items():
            kept = self._latest_and_delta_ancestors(thread_id, ns, ids)
            self.drop_checkpoints(thread_id, ns, set(ids) - kept)

    def _latest_and_delta_ancestors(self, thread_id: str, ns: str,
                                    ids: list[str]) -> set[str]:
        latest = ids[-1]
        counters = self.metadata(thread_id, ns, latest).get("counters_since_delta_snapshot")
        versions, parent = self._versions_and_parent(thread_id, ns, latest)
        needed = set(counters or ()) - self._valued(thread_id, ns, versions)
        kept = {latest}
        present = set(ids)
        while needed and parent in present and parent not in kept:
            kept.add(parent)
            versions, grandparent = self._versions_and_parent(thread_id, ns, parent)
            needed -= self._valued(thread_id, ns, versions)
            parent = grandparent
        return kept

    # -- copy --------------------------------------------------------------------------

    def copy_thread(self, source: str, target: str) -> None:
        for entry in sorted(self.records.entries(source), key=repr):
            record = self.records.read(source, entry)
            if record is None:
                continue
            self.records.write(target, entry, record)
            if entry[0] == "c":
                run_id = self.metadata(target, entry[1], entry[2]).get("run_id")
                if isinstance(run_id, str):
                    self.records.add_run(run_id, target, entry[1], entry[2])


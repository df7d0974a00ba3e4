"""``MemmeshSaver``: a LangGraph ``BaseCheckpointSaver`` on a memmesh replica.

A LangGraph thread's checkpoints, channel blobs and pending writes are kept in the
replica, so a thread started on one machine resumes on another after sync (issue 14).
The layout follows ``InMemorySaver``: a checkpoint without its channel values, one blob
per (channel, version), writes per (task id, idx). Each record is its own key holding an
add-wins OR-Set (Almeida, Shoker, Baquero 2018) with one element, the serde bytes
(:mod:`._lg_saver_records`). The records are immutable and their ids are unique per
thread (uuid6 checkpoint ids, task ids), so concurrent copies are byte-identical
elements of one set and never conflict, where an mv register would show two versions
and an lww register would need a clock to pick one.

The optional capabilities of LangGraph's conformance suite fit the same CRDT
(:mod:`._lg_saver_upkeep`): ``copy_thread`` adds the same write-once elements under the
target thread's keys; ``delete_thread``, ``delete_for_runs`` (a per-run index set finds
a run's checkpoints) and ``prune`` remove observed elements, so a record another replica
writes concurrently survives (add wins) and a deleted thread id can be used again, where
``forget`` would tombstone the key for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import Replica

from ._lg_saver_records import Records
from ._lg_saver_upkeep import Upkeep

__all__ = ["MemmeshSaver"]


class MemmeshSaver(BaseCheckpointSaver[str]):
    """Checkpoints, channel blobs and pending writes of LangGraph threads in a replica.

    Semantics are ``InMemorySaver``'s (``get_tuple``, ``list`` with ``filter``,
    ``before`` and ``limit``, ``put_writes`` keeping the first write of an index >= 0,
    ``delete_thread``); versions are ``InMemorySaver``'s too, and ``delete_for_runs``,
    ``copy_thread`` and ``prune`` are implemented. The async methods run the sync ones
    in a worker thread.

    ``app_id``, ``user_id``, ``agent_id``: the scope every record is written with. A
    saver sees only its own scope's threads (one thread id in two scopes is two
    threads), and a peer whose ``PeerScope`` excludes the scope never receives them.
    """

    def __init__(self, replica: Replica, *, serde: SerializerProtocol | None = None,
                 app_id: str | None = "langgraph", user_id: str | None = None,
                 agent_id: str | None = None) -> None:
        scope = {"app_id": app_id, "user_id": user_id, "agent_id": agent_id}
        for name, value in scope.items():
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(f"{name} must be a non-empty string or None")
        super().__init__(serde=serde)
        self.replica = replica
        self._records = Records(replica, scope)
        self._upkeep = Upkeep(self._records, self.serde)

    # -- reads -------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            ids = [e[2] for e in self._records.entries(thread_id) if e[0] == "c" and e[1] == ns]
            if not ids:
                return None
            checkpoint_id = max(ids)
        return self._tuple(thread_id, ns, checkpoint_id)

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str,
               metadata: CheckpointMetadata | None = None) -> CheckpointTuple | None:
        saved = self._records.read(thread_id, ("c", ns, checkpoint_id))
        if saved is None:
            return None
        ctype, cbytes, mtype, mbytes, parent_id = saved
        checkpoint: Checkpoint = self.serde.loads_typed((ctype, cbytes))
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            blob = self._records.read(thread_id, ("b", ns, channel, str(version)))
            if blob is not None and blob[0] != "empty":
                values[channel] = self.serde.loads_typed((blob[0], blob[1]))
        writes = [w for w in (self._records.read(thread_id, e)
                              for e in self._records.entries(thread_id)
                              if e[0] == "w" and e[1] == ns and e[2] == checkpoint_id)
                  if w is not None]
        writes.sort(key=lambda w: writes_sort_key(w[4], w[0], w[5]))

        def config_of(cid: str) -> RunnableConfig:
            return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                     "checkpoint_id": cid}}

        return CheckpointTuple(
            config=config_of(checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=(metadata if metadata is not None
                      else self.serde.loads_typed((mtype, mbytes))),
            parent_config=config_of(parent_id) if parent_id else None,
            pending_writes=[(w[0], w[1], self.serde.loads_typed((w[2], w[3])))
                            for w in writes],
        )

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None,
             ) -> Iterator[CheckpointTuple]:
        if config:
            threads: Sequence[str] = [config["configurable"]["thread_id"]]
            wanted_ns = config["configurable"].get("checkpoint_ns")
            wanted_id = get_checkpoint_id(config)
        else:
            threads = sorted(self._records.threads())
            wanted_ns, wanted_id = None, None
        before_id = get_checkpoint_id(before) if before else None
        left = limit
        for thread_id in threads:
            checkpoints = sorted(((e[1], e[2]) for e in self._records.entries(thread_id)
                                  if e[0] == "c"),
                                 key=lambda c: (c[0], _Desc(c[1])))
            for ns, checkpoint_id in checkpoints:
                if wanted_ns is not None and ns != wanted_ns:
                    continue
                if wanted_id and checkpoint_id != wanted_id:
                    continue
                if before_id and checkpoint_id >= before_id:
                    continue
                saved = self._records.read(thread_id, ("c", ns, checkpoint_id))
                if saved is None:
                    continue
                metadata = self.serde.loads_typed((saved[2], saved[3]))
                if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                    continue
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                found = self._tuple(thread_id, ns, checkpoint_id, metadata)
                if found is not None:
                    yield found

    # -- writes ------------------------------------------------------------------------

    def put(self, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        stored = checkpoint.copy()
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"]["checkpoint_ns"]
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        ctype, cbytes = self.serde.dumps_typed(stored)
        full_metadata = get_checkpoint_metadata(config, metadata)
        mtype, mbytes = self.serde.dumps_typed(full_metadata)
        parent = config["configurable"].get("checkpoint_id")
        run_id = full_metadata.get("run_id")
        with self.replica.batch():
            for channel, version in new_versions.items():
                blob = (self.serde.dumps_typed(values[channel]) if channel in values
                        else ("empty", b""))
                self._records.write(thread_id, ("b", ns, channel, str(version)), blob)
            self._records.write(thread_id, ("c", ns, checkpoint["id"]),
                                (ctype, cbytes, mtype, mbytes, parent))
            if isinstance(run_id, str):
                self._records.add_run(run_id, thread_id, ns, checkpoint["id"])
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        checkpoint_id: str = config["configurable"]["checkpoint_id"]
        with self.replica.batch():
            for idx, (channel, value) in enumerate(writes):
                at = WRITES_IDX_MAP.get(channel, idx)
                entry = ("w", ns, checkpoint_id, task_id, at)
                if at >= 0 and self._records.exists(thread_id, entry):
                    continue
                vtype, vbytes = self.serde.dumps_typed(value)
                self._records.write(thread_id, entry,
                                    (task_id, channel, vtype, vbytes, task_path, at))

    def delete_thread(self, thread_id: str) -> None:
        with self.replica.batch():
            self._upkeep.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Remove the checkpoints whose metadata ``run_id`` is one of ``run_ids``, with
        their pending writes and the channel blobs no other checkpoint references."""
        with self.replica.batch():
            self._upkeep.delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and pending write of one thread to another."""
        with self.replica.batch():
            self._upkeep.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's newest checkpoint (and the ancestors
        its ``DeltaChannel`` values are rebuilt from); ``"delete"``: delete the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidArgumentError('strategy must be "keep_latest" or "delete"')
        with self.replica.batch():
            for thread_id in thread_ids:
                if strategy == "delete":
                    self._upkeep.delete_thread(thread_id)
                else:
                    self._upkeep.keep_latest(thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return InMemorySaver.get_next_version(self, current, channel)  # type: ignore[arg-type]

    # -- async -------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None,
                    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *,
                     strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))


class _Desc:
    """Sorts strings in descending order (newest checkpoint id first)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

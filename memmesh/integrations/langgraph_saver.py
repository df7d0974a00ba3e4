"""``MemmeshSaver``: a LangGraph ``BaseCheckpointSaver`` on a memmesh replica.

A LangGraph thread's checkpoints, channel blobs and pending writes are kept in the
replica, so a thread started on one machine resumes on another after sync (issue 14).
The layout follows ``InMemorySaver``: a checkpoint without its channel values, one blob
per (channel, version), writes per (task id, idx). Each record is its own key, named by
a hash of its identity, holding an add-wins OR-Set (Almeida, Shoker, Baquero 2018) with
one element, the serde bytes. The records are immutable and their ids are unique per
thread (uuid6 checkpoint ids, task ids), so concurrent copies are byte-identical
elements of one set and never conflict, where an mv register would show two versions
and an lww register would need a clock to pick one. A per-thread index set and one set
of thread ids let ``list`` and ``delete_thread`` find the keys; removing observed
elements (not ``forget``) lets a deleted thread id be used again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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

from memmesh.storage import Replica

__all__ = ["MemmeshSaver"]

#: The set holding every thread id that has a checkpoint, a blob or a write here.
THREADS_KEY = "langgraph.checkpoint/threads"
_PREFIX = "langgraph.checkpoint/"

Element = tuple[Any, ...]


def _key(*identity: str | int) -> str:
    """The memmesh key of one record: a hash, so any thread id or namespace fits."""
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return _PREFIX + digest


class MemmeshSaver(BaseCheckpointSaver[str]):
    """Checkpoints, channel blobs and pending writes of LangGraph threads in a replica.

    Semantics are ``InMemorySaver``'s (``get_tuple``, ``list`` with ``filter``,
    ``before`` and ``limit``, ``put_writes`` keeping the first write of an index >= 0,
    ``delete_thread``); versions are ``InMemorySaver``'s too. The async methods run the
    sync ones in a worker thread.
    """

    def __init__(self, replica: Replica, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.replica = replica

    # -- records -----------------------------------------------------------------------

    def _read(self, key: str) -> Element | None:
        """The record at ``key``; the least by repr if concurrent writers disagreed."""
        members = self.replica.set_members(key)
        if not members:
            return None
        return min(members, key=repr)  # type: ignore[no-any-return]

    def _write(self, thread_id: str, entry: Element, key: str, record: Element) -> None:
        """Replace the record at ``key`` and index it under its thread."""
        for old in self.replica.set_members(key) - {record}:
            self.replica.set_remove(key, old)
        self.replica.set_add(key, record)
        self.replica.set_add(_key("thread", thread_id), entry)
        self.replica.set_add(THREADS_KEY, thread_id)

    def _entries(self, thread_id: str) -> frozenset[Element]:
        entries: frozenset[Element] = self.replica.set_members(_key("thread", thread_id))
        return entries

    # -- reads -------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            ids = [e[2] for e in self._entries(thread_id) if e[0] == "c" and e[1] == ns]
            if not ids:
                return None
            checkpoint_id = max(ids)
        return self._tuple(thread_id, ns, checkpoint_id)

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str,
               metadata: CheckpointMetadata | None = None) -> CheckpointTuple | None:
        saved = self._read(_key("c", thread_id, ns, checkpoint_id))
        if saved is None:
            return None
        ctype, cbytes, mtype, mbytes, parent_id = saved
        checkpoint: Checkpoint = self.serde.loads_typed((ctype, cbytes))
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            blob = self._read(_key("b", thread_id, ns, channel, str(version)))
            if blob is not None and blob[0] != "empty":
                values[channel] = self.serde.loads_typed((blob[0], blob[1]))
        writes = [w for w in (self._read(_key("w", thread_id, ns, checkpoint_id, e[3], e[4]))
                              for e in self._entries(thread_id)
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
            threads = sorted(self.replica.set_members(THREADS_KEY))
            wanted_ns, wanted_id = None, None
        before_id = get_checkpoint_id(before) if before else None
        left = limit
        for thread_id in threads:
            checkpoints = sorted(((e[1], e[2]) for e in self._entries(thread_id)
                                  if e[0] == "c"),
                                 key=lambda c: (c[0], _Desc(c[1])))
            for ns, checkpoint_id in checkpoints:
                if wanted_ns is not None and ns != wanted_ns:
                    continue
                if wanted_id and checkpoint_id != wanted_id:
                    continue
                if before_id and checkpoint_id >= before_id:
                    continue
                saved = self._read(_key("c", thread_id, ns, checkpoint_id))
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
        mtype, mbytes = self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
        parent = config["configurable"].get("checkpoint_id")
        with self.replica.batch():
            for channel, version in new_versions.items():
                blob = (self.serde.dumps_typed(values[channel]) if channel in values
                        else ("empty", b""))
                self._write(thread_id, ("b", ns, channel, str(version)),
                            _key("b", thread_id, ns, channel, str(version)), blob)
            self._write(thread_id, ("c", ns, checkpoint["id"]),
                        _key("c", thread_id, ns, checkpoint["id"]),
                        (ctype, cbytes, mtype, mbytes, parent))
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
                key = _key("w", thread_id, ns, checkpoint_id, task_id, at)
                if at >= 0 and self.replica.set_members(key):
                    continue
                vtype, vbytes = self.serde.dumps_typed(value)
                self._write(thread_id, ("w", ns, checkpoint_id, task_id, at), key,
                            (task_id, channel, vtype, vbytes, task_path, at))

    def delete_thread(self, thread_id: str) -> None:
        index = _key("thread", thread_id)
        with self.replica.batch():
            for entry in self.replica.set_members(index):
                key = _key(*entry[:1], thread_id, *entry[1:])
                for record in self.replica.set_members(key):
                    self.replica.set_remove(key, record)
                self.replica.set_remove(index, entry)
            self.replica.set_remove(THREADS_KEY, thread_id)

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


class _Desc:
    """Sorts strings in descending order (newest checkpoint id first)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

"""Reads: records, listings through the scope index, history and ``as_of`` views.

TTL is enforced on every read (an expired memory is invisible even before the
collector removes it), as LangGraph's ``SqliteStore`` bug #8902 taught.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from memmesh.crdt import Dot, InvalidArgumentError, Timestamp
from memmesh.crdt.keystate import KIND_MEMORY, KIND_SET, KeyState, VersionData

from . import _history as history
from ._digest import state_key
from ._env import Env, Txn
from ._filters import MetadataFilter, check_page, compile_filter, page, record_matches
from ._hidden import visible
from ._indexes import SCOPE_FIELDS, scope_prefix
from ._keycodec import decode
from ._keystore import load
from ._memory import check_scope, to_version
from ._records import Event, MemoryRecord

__all__ = ["AsOfView", "Reads", "current_record", "scan_states", "scope_filters",
           "states_under", "to_record"]

#: Index preference for ``list``: the most selective scope field first.
_PREFERENCE = ("run_id", "agent_id", "user_id", "app_id")


def to_record(state: KeyState, standing: list[tuple[Dot, VersionData]],
              now_ms: int) -> MemoryRecord | None:
    h = state.header
    if h.kind != KIND_MEMORY or state.forgotten or not standing:
        return None
    if h.expires_at is not None and h.expires_at <= now_ms:
        return None
    versions = tuple(to_version(d, v) for d, v in standing)
    assert h.created is not None
    return MemoryRecord(id=h.key, app_id=h.app_id, user_id=h.user_id, agent_id=h.agent_id,
                        run_id=h.run_id, policy=h.policy, tier=h.tier, priority=h.priority,
                        versions=versions, created_at=h.created,
                        updated_at=max(v.timestamp for v in versions), expires_at=h.expires_at)


def current_record(txn: Txn, state: KeyState, now_ms: int) -> MemoryRecord | None:
    """The record of ``state`` at ``now_ms``, less the versions hidden on this replica
    (:mod:`._hidden`): what every read of the present hands out."""
    return to_record(state, visible(txn, state, state.standing()), now_ms)


def _matches(state: KeyState, filters: dict[str, str | None]) -> bool:
    h = state.header
    return all(getattr(h, name) == value for name, value in filters.items())


def scope_filters(scope: dict[str, Any]) -> dict[str, str | None]:
    """The scope filters of a read, validated (unknown names are an error)."""
    unknown = set(scope) - set(SCOPE_FIELDS)
    if unknown:
        raise InvalidArgumentError(f"unknown scope filters {sorted(unknown)}")
    checked = check_scope(scope)
    return {k: checked[k] for k in scope}


def scan_states(txn: Txn, filters: dict[str, str | None]) -> Iterator[KeyState]:
    """Key states of memories matching ``filters``, through the scope index if one
    filter has a value (a full scan only when no filter narrows the set)."""
    field = next((f for f in _PREFERENCE if filters.get(f) is not None), None)
    if field is None:
        for _, raw in txn.prefix("state", b""):
            state = decode(raw, check_canonical=False)
            if state.header.kind == KIND_MEMORY and _matches(state, filters):
                yield state
        return
    value = filters[field]
    assert value is not None
    for state in states_under(txn, field, value):
        if _matches(state, filters):
            yield state


def states_under(txn: Txn, field: str, value: str) -> Iterator[KeyState]:
    """The key states of the memories whose scope field ``field`` is ``value``: one
    range of the ``scope`` index, in key order."""
    prefix = scope_prefix(field, value)
    for ikey, _ in txn.prefix("scope", prefix):
        found = txn.get("state", state_key(ikey[len(prefix):].decode()))
        if found is not None:
            yield decode(found, check_canonical=False)


class Reads:
    """Reads of memories, sets and histories, as of now or of a past instant."""

    def __init__(self, env: Env, clock: Callable[[], int]) -> None:
        self._env = env
        self._clock = clock

    def get(self, memory_id: str) -> MemoryRecord | None:
        """The live memory ``memory_id`` (None if unknown, deleted, forgotten or expired)."""
        if type(memory_id) is not str:
            raise InvalidArgumentError("memory_id must be a str")
        now = self._clock()
        with self._env.read() as txn:
            _, _, state = load(txn, memory_id)
            if state is None:
                return None
            return current_record(txn, state, now)

    def list(self, *, limit: int | None = None, offset: int = 0,
             filters: Mapping[str, Any] | None = None, **scope: str | None
             ) -> builtins.list[MemoryRecord]:
        """Live memories matching every given scope filter (``app_id``, ``user_id``,
        ``agent_id``, ``run_id``; None matches an absent field) and the metadata
        ``filters`` (:mod:`memmesh.storage._filters`: ``$eq $ne $gt $gte $lt $lte $in
        $nin``, ``$and``/``$or``), oldest first; then ``offset`` skipped, at most
        ``limit`` returned."""
        fields = scope_filters(scope)
        predicate = compile_filter(filters)
        check_page(limit, offset)
        return page(self.matching(fields, predicate), limit, offset)

    def matching(self, fields: dict[str, str | None], predicate: MetadataFilter | None = None
                 ) -> builtins.list[MemoryRecord]:
        """The live memories matching the checked scope ``fields`` (see
        :func:`scope_filters`) and ``predicate``, oldest first."""
        now = self._clock()
        out: builtins.list[MemoryRecord] = []
        with self._env.read() as txn:
            for state in scan_states(txn, fields):
                record = current_record(txn, state, now)
                if record is not None and record_matches(record, predicate):
                    out.append(record)
        out.sort(key=lambda r: (r.created_at, r.id))
        return out

    def pages(self, size: int = 1000) -> Iterator[builtins.list[MemoryRecord]]:
        """Every live memory, in pages of at most ``size``, in storage order (not
        :meth:`list`'s oldest first): each page is read in a short read transaction of
        its own and the next resumes after its last key, so memory holds one page
        whatever the replica's size. Not one snapshot: a memory written between pages
        may be read or missed, so a consumer that must not miss it reads the journal
        position first and replays from there (``JournalFollower``'s reset)."""
        if type(size) is not int or size < 1:
            raise InvalidArgumentError("size must be an int >= 1")
        start = b""
        while True:
            now = self._clock()
            out: builtins.list[MemoryRecord] = []
            scanned = 0
            with self._env.read() as txn:
                for skey, raw in txn.prefix("state", b"", start):
                    if skey == start:
                        continue  # the previous page's last key
                    state = decode(raw, check_canonical=False)
                    if state.header.kind == KIND_MEMORY:
                        record = current_record(txn, state, now)
                        if record is not None:
                            out.append(record)
                    start = skey
                    scanned += 1
                    if scanned == size:
                        break
            if out:
                yield out
            if scanned < size:
                return

    def set_members(self, key: str) -> frozenset[Any]:
        """The elements of the add-wins set ``key`` (empty if unknown or forgotten)."""
        with self._env.read() as txn:
            _, _, state = load(txn, key)
        if state is None or state.header.kind != KIND_SET or state.forgotten:
            return frozenset()
        return frozenset(state.body)

    def history(self, memory_id: str) -> builtins.list[Event]:
        """The timeline of ``memory_id``, oldest first by the events' own hybrid
        timestamps: every event of every replica this one has merged (intermediate
        updates and NOOPs included), the same list on replicas holding the same state;
        compacted to the memory's ``history_limit`` (docs/internals.md, "The
        timeline"). A forgotten memory keeps only its FORGET events."""
        with self._env.read() as txn:
            _, _, state = load(txn, memory_id)
        return history.events(state)

    def as_of(self, timestamp: Timestamp | int) -> AsOfView:
        """A read-only view of the memories as they stood at ``timestamp`` (a hybrid
        :class:`Timestamp` or wall-clock milliseconds) by their timelines, so replicas
        holding the same states agree on it."""
        if isinstance(timestamp, Timestamp):
            at = (timestamp.wall_ms, timestamp.logical, timestamp.replica)
        elif type(timestamp) is int:
            at = (timestamp, 2**32, "")
        else:
            raise InvalidArgumentError("as_of takes a Timestamp or wall-clock milliseconds")
        return AsOfView(self._env, at)


class AsOfView:
    """The memories of a replica at a past instant (read-only: it has no mutators)."""

    def __init__(self, env: Env, at: tuple[int, int, str]) -> None:
        self._env = env
        self._at = at

    def _record(self, txn: Txn, state: KeyState) -> MemoryRecord | None:
        standing = history.as_of_versions(state, self._at)
        if standing is None:
            return None
        return to_record(state, visible(txn, state, standing), self._at[0])

    def get(self, memory_id: str) -> MemoryRecord | None:
        with self._env.read() as txn:
            _, _, state = load(txn, memory_id)
            return None if state is None else self._record(txn, state)

    def list(self, *, limit: int | None = None, offset: int = 0,
             filters: Mapping[str, Any] | None = None, **scope: str | None
             ) -> builtins.list[MemoryRecord]:
        """As ``Replica.list``, at this view's instant."""
        fields = scope_filters(scope)
        predicate = compile_filter(filters)
        check_page(limit, offset)
        out: builtins.list[MemoryRecord] = []
        with self._env.read() as txn:
            for state in scan_states(txn, fields):
                record = self._record(txn, state)
                if record is not None and record_matches(record, predicate):
                    out.append(record)
        out.sort(key=lambda r: (r.created_at, r.id))
        return page(out, limit, offset)

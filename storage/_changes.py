"""Change events: what a watcher is told about one journal entry, and its filter.

The journal records only which key changed (``storage/_journal.py``), so an event
reports the key as read when its page is read, at or after the change: the op that
describes that state (the newest standing version's ADD, UPDATE or RESOLVE, or NOOP
when the timeline's newest event is a NOOP logged after it; DELETE when nothing stands;
FORGET, EXPIRE, SET for sets), its scope and standing versions. A key
named several times in one page is reported once, at its last change (the earlier
events would carry the same state). A page's states are read in one read transaction
after the page, so each event shows its key at or after its cursor's change. A page
that reset (the journal was truncated past the watcher's cursor) becomes one RESET
event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from memmesh.crdt import InvalidArgumentError
from memmesh.crdt.keystate import KIND_SET, OP_NOOP, OPS, KeyState

from ._follow import FollowPage
from ._keystore import load
from ._memory import to_version
from ._reads import scope_filters
from ._records import Change, Version

__all__ = ["EVENT_OPS", "ChangeEvent", "WatchFilter", "event_of", "page_events", "reset_event"]

#: The ops a change event may report (RESET is never filtered out).
EVENT_OPS = frozenset({"ADD", "UPDATE", "RESOLVE", "NOOP", "DELETE", "FORGET", "EXPIRE",
                       "SET", "RESET"})


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One change a watcher sees.

    ``cursor``: the journal position of the change; pass it as ``since`` to resume after
    it. ``op``: ADD, UPDATE or RESOLVE (the newest standing version's op), NOOP (the
    memory's newest timeline event is a NOOP, newer than every standing version: a
    write absorbed without a new version, replicated like any event), DELETE
    (nothing stands), FORGET, EXPIRE (the TTL passed or the key was collected), SET (an
    add-wins set changed), or RESET (the journal no longer holds every change after the
    watcher's cursor: re-read what you derive; ``memory_id`` is then None). ``versions``:
    the versions standing when the event was read (empty unless ADD, UPDATE, RESOLVE,
    NOOP).
    ``local``: written through this directory (any process), not merged from a peer.
    """

    cursor: int
    op: str
    memory_id: str | None
    app_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    versions: tuple[Version, ...] = ()
    local: bool = True
    priority: bool = False


def reset_event(cursor: int) -> ChangeEvent:
    return ChangeEvent(cursor, "RESET", None)


def event_of(txn: Any, change: Change, now_ms: int) -> ChangeEvent:
    """The event of journal entry ``change``, reading its key in ``txn``."""
    key = change.memory_id
    _, _, state = load(txn, key)
    if state is None:  # removed whole: the journal entry kept its scope
        app, user, agent, run = change.scope or (None, None, None, None)
        return ChangeEvent(change.seq, "EXPIRE", key, app, user, agent, run, (),
                           change.local, change.priority)
    h = state.header
    op, versions = _op_versions(state, now_ms)
    return ChangeEvent(change.seq, op, key, h.app_id, h.user_id, h.agent_id, h.run_id,
                       versions, change.local, change.priority)


def _op_versions(state: KeyState, now_ms: int) -> tuple[str, tuple[Version, ...]]:
    h = state.header
    if state.forgotten:
        return "FORGET", ()
    if h.kind == KIND_SET:
        return "SET", ()
    if h.expires_at is not None and h.expires_at <= now_ms:
        return "EXPIRE", ()
    standing = state.standing()
    if not standing:
        return "DELETE", ()
    versions = tuple(to_version(d, v) for d, v in standing)
    dot, newest = max(standing, key=lambda item: item[1].stamp(item[0]))
    if state.events:
        edot, event = max(state.events.items(), key=lambda item: item[1].stamp(item[0]))
        if event.op == OP_NOOP and event.stamp(edot) > newest.stamp(dot):
            return "NOOP", versions
    return OPS[newest.op], versions


class WatchFilter:
    """Which events a watcher wants: scope fields equal (as ``Replica.list``: None
    matches an absent field), ops, a memory-id prefix and a ``where`` predicate.
    RESET always passes."""

    def __init__(self, scope: Mapping[str, Any], *, ops: Iterable[str] | None = None,
                 prefix: str | None = None,
                 where: Callable[[ChangeEvent], bool] | None = None) -> None:
        self.scope = scope_filters(dict(scope))
        if isinstance(ops, str):
            raise InvalidArgumentError("ops must be a collection of op names, not a str")
        self.ops = None if ops is None else frozenset(ops)
        if self.ops is not None and (not self.ops <= EVENT_OPS or not all(
                type(op) is str for op in self.ops)):
            raise InvalidArgumentError(
                f"unknown ops {sorted(map(repr, self.ops - EVENT_OPS))}; known:"
                f" {sorted(EVENT_OPS)}")
        if prefix is not None and type(prefix) is not str:
            raise InvalidArgumentError("prefix must be a str or None")
        self.prefix = prefix
        if where is not None and not callable(where):
            raise InvalidArgumentError("where must be callable")
        self.where = where

    def wants_key(self, change: Change) -> bool:
        """Whether the entry may pass (checked before its key is read)."""
        return self.prefix is None or change.memory_id.startswith(self.prefix)

    def __call__(self, event: ChangeEvent) -> bool:
        if event.op == "RESET":
            return True
        if self.ops is not None and event.op not in self.ops:
            return False
        if any(getattr(event, name) != value for name, value in self.scope.items()):
            return False
        return self.where is None or bool(self.where(event))


def page_events(txn: Any, page: FollowPage, wanted: WatchFilter,
                now_ms: int) -> list[ChangeEvent]:
    """The events of ``page`` that ``wanted`` accepts, in commit order, each key once
    (at its last change in the page)."""
    if page.reset:
        return [reset_event(page.cursor)]
    last = {change.memory_id: change for change in page.changes}
    out = []
    for change in sorted(last.values(), key=lambda c: c.seq):
        if not wanted.wants_key(change):
            continue
        event = event_of(txn, change, now_ms)
        if wanted(event):
            out.append(event)
    return out

"""A memory's history, read from its replicated timeline, and the upgrade of the local
history rows written before the timeline existed.

The timeline is part of the key state (:mod:`memmesh.crdt.keystate`, the events of
``crdt/_eventlog.py``): every replica holding the same state returns the same
``history(id)``, oldest first by the events' own hybrid timestamps, and ``as_of(t)`` is
a pure function of those events (``keystate.standing_at``), so converged replicas
agree on the past too. ``forget`` leaves only the content-free FORGET events.
"""

from __future__ import annotations

from typing import Any

from memmesh.crdt import CausalContext, Dot, Timestamp, base_replica, unpackb
from memmesh.crdt.keystate import (
    EVENT_OPS,
    KIND_MEMORY,
    EventData,
    KeyState,
    VersionData,
    standing_at,
    version_event,
)

from ._env import Txn
from ._records import Event

__all__ = ["as_of_versions", "events", "legacy_events"]


def _event(key: str, dot: Dot, e: EventData) -> Event:
    ts = e.stamp(dot)
    detail = dict(e.detail)
    version = e.version
    if version is not None and version.resolver is not None:
        detail.setdefault("resolver", version.resolver)
    # the dot names the origin; an Event names the member (its base replica id)
    return Event(op=EVENT_OPS[e.op], memory_id=key, actor=e.actor,
                 replica=base_replica(dot.replica), timestamp=ts, dot=dot,
                 context=CausalContext(dict(e.ctx)),
                 text=None if version is None else version.text, detail=detail,
                 recorded_at=ts, role=e.role,
                 importance=None if version is None else version.importance)


def events(state: KeyState | None) -> list[Event]:
    """The timeline of a memory, oldest first (by hybrid timestamp, then dot)."""
    if state is None or state.header.kind != KIND_MEMORY:
        return []
    key = state.header.key
    ordered = sorted(state.events.items(), key=lambda item: (item[1].stamp(item[0]), item[0]))
    return [_event(key, dot, e) for dot, e in ordered]


def as_of_versions(state: KeyState, at: tuple[int, int, str]
                   ) -> list[tuple[Dot, VersionData]] | None:
    """The versions of the memory standing at hybrid time ``at`` (wall, logical,
    origin), by its timeline; None if it had no event by then (or is forgotten).

    A state written before the timeline (no events) answers with its standing
    versions written by ``at``.
    """
    if state.forgotten or state.header.kind != KIND_MEMORY:
        return None
    if not state.events:
        created = state.header.created
        if created is None or (created.wall_ms, created.logical, created.replica) > at:
            return None
        return [(d, v) for d, v in state.standing() if (v.wall_ms, v.logical, d.replica) <= at]
    past: list[tuple[Dot, VersionData]] | None = standing_at(state.events,
                                                             state.header.policy, at)
    return past


_LOCAL_ONLY = ("remote", "from", "resolver")


def legacy_events(txn: Txn, key: str) -> dict[Dot, EventData]:
    """The events of ``key``'s local history rows (layout 2), as timeline events: every
    entry that names its dot (local events, and versions merged from peers); NOOPs and
    a peer's DELETE or FORGET were recorded without one and are left out."""
    out: dict[Dot, EventData] = {}
    for _, raw in txn.prefix("history", key.encode() + b"\x00"):
        entry: Any = unpackb(raw)
        op, actor, _replica, ts, dot, ctx, _text, detail, _rec, _standing, version = entry
        if dot is None or op not in EVENT_OPS:
            continue
        pairs = dict(ctx)
        extra = {k: v for k, v in dict(detail).items() if k not in _LOCAL_ONLY}
        if version is not None:
            out[Dot(*dot)] = version_event(VersionData(*version), pairs, extra)
        else:
            stamp = Timestamp(*ts)
            out[Dot(*dot)] = EventData(EVENT_OPS.index(op), actor, None, stamp.wall_ms,
                                       stamp.logical, tuple(sorted(pairs.items())), extra)
    return out

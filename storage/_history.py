"""The event history of each memory: local events and remote merges, in record order.

An entry (``key + 0x00 + seq(8) -> event``, layout: docs/internals.md, section 2) keeps
the event's op, actor, origin, own hybrid time, dot, the key's context after it, the
dots standing after it and the version it created, and ``recorded_at``, this replica's
time when it recorded the event. That makes ``as_of(t)`` a lookup: the standing dots of
the last event recorded at or before ``t``, each resolved to the version that created
it. ``forget`` deletes every entry of the key (the content must not survive anywhere)
and leaves one content-free FORGET entry.
"""

from __future__ import annotations

from typing import Any

from memmesh.crdt import CausalContext, Dot, Timestamp, base_replica, pack_canonical, unpackb
from memmesh.crdt.keystate import VersionData

from ._env import Txn
from ._records import Event

__all__ = ["as_of_versions", "entry", "event_detail", "events", "purge", "record",
           "record_many", "version_entry", "version_event"]

_SEQ = b"hseq"


def _ts(ts: Timestamp) -> tuple[int, int, str]:
    return (ts.wall_ms, ts.logical, ts.replica)


def entry(*, op: str, actor: str | None, replica: str, ts: Timestamp, dot: Dot | None,
          ctx: dict[str, int], text: str | None, detail: dict[str, Any],
          recorded_at: Timestamp, standing: list[Dot], version: VersionData | None) -> bytes:
    """The stored bytes of one event (local-only bytes of already validated data: plain
    msgpack, no canonical walk)."""
    out: bytes = pack_canonical((op, actor, replica, _ts(ts),
                                 None if dot is None else (dot.replica, dot.counter),
                                 tuple(sorted(ctx.items())), text, detail, _ts(recorded_at),
                                 tuple((d.replica, d.counter) for d in standing), version))
    return out


def version_entry(op: str, dot: Dot, version: VersionData, *, ctx: dict[str, int],
                  standing: list[Dot], detail: dict[str, Any],
                  recorded_at: Timestamp) -> bytes:
    """:func:`entry` of the event that created ``version`` with ``dot`` (its actor, text
    and own hybrid time come from the version), without building the event first."""
    out: bytes = pack_canonical((op, version.actor, dot.replica,
                                 (version.wall_ms, version.logical, dot.replica),
                                 (dot.replica, dot.counter), tuple(sorted(ctx.items())),
                                 version.text, detail, _ts(recorded_at),
                                 tuple((d.replica, d.counter) for d in standing), version))
    return out


def event_detail(version: VersionData, detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` of a version's event: a RESOLVE names its resolver, on the replica
    that wrote it and on every replica that merges it."""
    if version.resolver is not None and "resolver" not in detail:
        return {**detail, "resolver": version.resolver}
    return detail


def version_event(op: str, dot: Dot, version: VersionData, recorded_at: Timestamp,
                  detail: dict[str, Any]) -> dict[str, Any]:
    """The event (the keyword arguments of :func:`entry` but the key's context and
    standing dots) that recorded ``version``."""
    return {"op": op, "actor": version.actor, "replica": dot.replica,
            "ts": version.stamp(dot), "dot": dot, "text": version.text,
            "detail": event_detail(version, detail), "recorded_at": recorded_at,
            "version": version}


def record(txn: Txn, key: str, **event: Any) -> None:
    """Append one event (the keyword arguments of :func:`entry`) to ``key``'s history."""
    record_many(txn, [(key, entry(**event))])


def record_many(txn: Txn, entries: list[tuple[str, bytes]]) -> None:
    """Append already encoded events, in order, with one cursor call."""
    if not entries:
        return
    seq = txn.counter(_SEQ)
    rows = []
    for key, value in entries:
        seq += 1
        rows.append((key.encode() + b"\x00" + seq.to_bytes(8, "big"), value))
    txn.set_counter(_SEQ, seq)
    txn.defer_rows("history", rows)


def purge(txn: Txn, key: str) -> int:
    """Delete every history entry of ``key``; return how many."""
    doomed = [k for k, _ in txn.prefix("history", key.encode() + b"\x00")]
    for k in doomed:
        txn.delete("history", k)
    return len(doomed)


def _raw(txn: Txn, key: str) -> list[tuple[Any, ...]]:
    entries: list[tuple[Any, ...]] = [
        unpackb(v)  # type: ignore[misc, unused-ignore]
        for _, v in txn.prefix("history", key.encode() + b"\x00")]
    return entries


def _event(key: str, e: tuple[Any, ...]) -> Event:
    op, actor, replica, ts, dot, ctx, text, detail, rec, _standing, _version = e
    # entries name the origin of a version's dot; an Event names the member (its base)
    return Event(op=op, memory_id=key, actor=actor, replica=base_replica(replica),
                 timestamp=Timestamp(*ts),
                 dot=None if dot is None else Dot(*dot), context=CausalContext(dict(ctx)),
                 text=text, detail=dict(detail), recorded_at=Timestamp(*rec))


def events(txn: Txn, key: str) -> list[Event]:
    return [_event(key, e) for e in _raw(txn, key)]


def as_of_versions(txn: Txn, key: str, at: tuple[int, int, str]
                   ) -> list[tuple[Dot, VersionData]] | None:
    """The versions of ``key`` standing at hybrid time ``at`` (wall, logical, replica)
    on this replica (events are compared by when this replica recorded them).

    None if the key had no recorded event by then.
    """
    raws = _raw(txn, key)
    created: dict[tuple[str, int], VersionData] = {}
    standing: tuple[tuple[str, int], ...] | None = None
    for _, _, _, _, dot, _, _, _, recorded_at, after, version in raws:
        if tuple(recorded_at) > at:
            break
        if version is not None and dot is not None:
            created[tuple(dot)] = VersionData._make(version)
        standing = after
    if standing is None:
        return None
    out = []
    for pair in standing:
        version = created.get((pair[0], pair[1]))
        if version is not None:
            out.append((Dot(*pair), version))
    return out

"""The shared timeline of a memory: a grow-only set of events identified by dot, with a
deterministic compaction that keeps its join a semilattice.

Every event on a memory (ADD, UPDATE, RESOLVE, DELETE, NOOP, FORGET) mints a dot; the
log maps dot -> :class:`EventData` and joins by union (a G-Set keyed by dot, Shapiro et
al. 2011), so once converged every replica holds the same events. Its size is bounded
by :func:`compact`: keep the events whose dot is *protected* (under "mv", the versions
still standing) and the ``keep`` highest-ranked others, ranked by :func:`rank` (the ADD
first, then the newest by hybrid timestamp). "Union, then keep the top ``keep`` by a
total order" is associative, commutative and idempotent, and so is this join, because
the set of unprotected dots only grows under the join (a dot covered by a state's
context and absent from its body never stands again: the dot-store rule of Almeida,
Shoker, Baquero 2018). The argument is in docs/internals.md ("The timeline");
tests/crdt/test_eventlog.py checks the laws as hypothesis properties.

One dot shipped with different data (only a faulty peer does that) keeps the variant
with the greatest ``(rank, canonical bytes)``, so the join stays a total function.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._canonical import packb
from ._dot import Dot
from ._hlc import Timestamp

if TYPE_CHECKING:
    from .keystate import VersionData

__all__ = [
    "DEFAULT_KEEP",
    "EVENT_OPS",
    "MAX_KEEP",
    "OP_FORGET",
    "OP_NOOP",
    "EventData",
    "compact",
    "covered",
    "join_events",
    "rank",
    "standing_at",
    "version_event",
]

#: Event ops; the first four are the version ops of ``keystate.OPS`` (same indexes).
EVENT_OPS = ("ADD", "UPDATE", "RESOLVE", "DELETE", "NOOP", "FORGET")
_OP_ADD, _OP_UPDATE, _OP_RESOLVE, _OP_DELETE = range(4)
OP_NOOP, OP_FORGET = 4, 5

#: How many unprotected events a memory keeps unless its creator chose otherwise.
DEFAULT_KEEP = 32
#: The largest ``keep`` (practically "never compact").
MAX_KEEP = 2**32 - 1


class EventData(NamedTuple):
    """One event of a memory's timeline, as stored and shipped (its dot is the key).

    ``op`` indexes :data:`EVENT_OPS`; ``actor``/``role`` who did it; ``(wall_ms,
    logical, origin of the dot)`` its hybrid timestamp; ``ctx`` the key's version
    vector after the event, as sorted ``(origin, counter)`` pairs (what it had seen);
    ``detail`` plain data (a NOOP's reason, ...); ``version`` the version it wrote (ADD,
    UPDATE, RESOLVE, and DELETE under "lww"), else None.
    """

    op: int
    actor: str | None
    role: str | None
    wall_ms: int
    logical: int
    ctx: tuple[tuple[str, int], ...]
    detail: dict[str, Any]
    version: VersionData | None = None

    def stamp(self, dot: Dot) -> Timestamp:
        """The hybrid timestamp of this event, minted under ``dot``."""
        return Timestamp(self.wall_ms, self.logical, dot.replica)


def version_event(version: VersionData, ctx: Mapping[str, int],
                  detail: dict[str, Any] | None = None) -> EventData:
    """The event that wrote ``version``, the key's context being ``ctx`` after it."""
    return EventData(version.op, version.actor, version.role, version.wall_ms,
                     version.logical, tuple(sorted(ctx.items())), detail or {}, version)


def rank(dot: Dot, event: EventData) -> tuple[bool, int, int, str, int]:
    """The total order compaction keeps the top of: the ADD first, then the newest
    hybrid timestamp; the dot makes it total."""
    return (event.op == _OP_ADD, event.wall_ms, event.logical, dot.replica, dot.counter)


def _winner(dot: Dot, a: EventData, b: EventData) -> EventData:
    """The variant of ``dot`` a join keeps: the greatest (rank, canonical bytes)."""
    ra, rb = rank(dot, a), rank(dot, b)
    if ra != rb:
        return a if ra > rb else b
    return a if packb(a) >= packb(b) else b


def join_events(a: Mapping[Dot, EventData], b: Mapping[Dot, EventData]) -> dict[Dot, EventData]:
    """The union of two logs (one variant per dot: :func:`_winner`), not compacted."""
    out = dict(a)
    for dot, event in b.items():
        mine = out.get(dot)
        if mine is None:
            out[dot] = event
        elif mine != event:
            out[dot] = _winner(dot, mine, event)
    return out


def compact(events: dict[Dot, EventData], keep: int, protected: Collection[Dot]
            ) -> dict[Dot, EventData]:
    """``events`` without the unprotected ones beyond the ``keep`` highest-ranked
    (:func:`rank`); returns ``events`` itself when nothing is dropped."""
    candidates = [d for d in events if d not in protected]
    if len(candidates) <= keep:
        return events
    candidates.sort(key=lambda d: rank(d, events[d]), reverse=True)
    dropped = set(candidates[keep:])
    return {d: e for d, e in events.items() if d not in dropped}


def covered(dot: Dot, ctx: Iterable[tuple[str, int]]) -> bool:
    """Whether ``dot`` is in the version vector given as ``(origin, counter)`` pairs."""
    return any(origin == dot.replica and dot.counter <= counter for origin, counter in ctx)


def standing_at(events: Mapping[Dot, EventData], policy: str,
                at: tuple[int, int, str]) -> list[tuple[Dot, VersionData]] | None:
    """The versions standing at hybrid time ``at`` (wall, logical, origin) according to
    the events of the log up to ``at``; None if the log had no event by then.

    Under "mv" a version stands unless a later event up to ``at`` superseded it: an
    ADD, UPDATE or DELETE whose context covers it, or a RESOLVE naming it. Under "lww"
    the version with the greatest timestamp stands (none if it is a DELETE). A pure
    function of the log, so replicas holding the same log agree.
    """
    past = [(d, e) for d, e in events.items()
            if (e.wall_ms, e.logical, d.replica) <= at]
    if not past:
        return None
    versions = [(d, e) for d, e in past if e.version is not None]
    if policy == "lww":
        if not versions:
            return []
        dot, event = max(versions, key=lambda item: item[1].stamp(item[0]))
        assert event.version is not None
        return [] if event.op == _OP_DELETE else [(dot, event.version)]
    out: list[tuple[Dot, VersionData]] = []
    for dot, event in sorted(versions):
        assert event.version is not None
        if not any(_supersedes(d, e, dot) for d, e in past if d != dot):
            out.append((dot, event.version))
    return out


def _supersedes(dot: Dot, event: EventData, target: Dot) -> bool:
    if event.op == _OP_RESOLVE and event.version is not None:
        return (target.replica, target.counter) in event.version.inputs
    if event.op in (_OP_ADD, _OP_UPDATE, _OP_DELETE):
        return covered(target, event.ctx)
    return False

"""The memory CRDT: the state of one key (a memory or a set), its join and its mutators.

A key state (:class:`KeyState`) is what a replica stores, hashes and ships for one key.
Its context is a plain version vector, and that is exact: dots come from one counter
per origin shared by all keys, and every event an origin makes on a key first raises
the key's entry for it, so "the key has seen dot (o, c)" is ``c <= ctx[o]`` (the
per-key version vector of dotted version vectors, Preguiça et al. 2012). The bodies
join with this package's CRDT types (Almeida, Shoker, Baquero 2018). Each mutator takes
the fresh dot the caller minted and returns the key's new state, which is also its
delta: with a version-vector context no smaller state carries an observed-remove, and
key states are small and shipped whole (but for the timeline events a peer already
holds: :func:`unseen_by`). A memory's state also carries its timeline, the events of
:mod:`._eventlog`, compacted to its ``keep``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from ._canonical import check_element, pack_canonical
from ._causal_context import CausalContext
from ._dot import Dot
from ._dotstore import unchecked
from ._errors import InvalidArgumentError
from ._eventlog import (
    DEFAULT_KEEP,
    EVENT_OPS,
    MAX_KEEP,
    OP_FORGET,
    OP_NOOP,
    EventData,
    compact,
    join_events,
    rank,
    standing_at,
    version_event,
)
from ._hlc import Timestamp
from ._lwwregister import LWWRegister
from ._mvregister import MVRegister
from ._orset import ORSet

__all__ = [
    "DEFAULT_KEEP",
    "EVENT_OPS",
    "KIND_MEMORY",
    "KIND_SET",
    "MAX_KEEP",
    "OPS",
    "OP_ADD",
    "OP_DELETE",
    "OP_FORGET",
    "OP_NOOP",
    "OP_RESOLVE",
    "OP_UPDATE",
    "POLICIES",
    "TIERS",
    "EventData",
    "Header",
    "KeyState",
    "VersionData",
    "check_inputs",
    "clear",
    "compact",
    "create",
    "forget",
    "header_order",
    "join",
    "join_events",
    "mark",
    "noop",
    "rank",
    "set_add",
    "set_remove",
    "standing_at",
    "unseen_by",
    "version_event",
    "write",
]

KIND_MEMORY, KIND_SET = 0, 1
POLICIES = ("mv", "lww", "set")
TIERS = ("shared", "private")
OPS = ("ADD", "UPDATE", "RESOLVE", "DELETE")
OP_ADD, OP_UPDATE, OP_RESOLVE, OP_DELETE = range(4)


class VersionData(NamedTuple):
    """One version of a memory as stored: plain data, ordered and packed as a tuple.

    ``op`` is an index into :data:`OPS`; the version's hybrid timestamp is ``(wall_ms,
    logical, origin of its dot)``; ``inputs`` (RESOLVE only) are the sorted
    ``(origin, counter)`` pairs of the versions it resolves; ``importance`` (None: not
    given) is in [0, 1].
    """

    text: str | None
    actor: str | None
    role: str | None
    wall_ms: int
    logical: int
    confidence: float
    metadata: dict[str, Any]
    op: int
    resolver: str | None = None
    inputs: tuple[tuple[str, int], ...] = ()
    importance: float | None = None

    def stamp(self, dot: Dot) -> Timestamp:
        """The hybrid timestamp of this version, written under ``dot``."""
        return Timestamp(self.wall_ms, self.logical, dot.replica)


class Header(NamedTuple):
    """Immutable facts about a key, fixed when it is created."""

    key: str
    kind: int
    app_id: str | None
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    policy: str
    tier: str
    priority: bool
    created: Timestamp | None
    expires_at: int | None

    @property
    def shareable(self) -> bool:
        return self.tier == "shared"


@dataclass(slots=True)
class KeyState:
    """The state of one key:

    * ``header``, an immutable :class:`Header` (id, kind, scope, policy, tier, priority,
      created, expires_at);
    * ``ctx``, the key's causal context, a version vector ``{origin: counter}``;
    * ``forgotten``, the erasure tombstone (header, context and the FORGET events: no
      content);
    * ``body``, the standing versions (dot -> :class:`VersionData`; policy "mv": a
      multi-value register, "lww": a last-writer-wins register, at most one entry) or
      the elements of an add-wins set (element -> ``frozenset[Dot]``, kind "set");
    * ``events``, a memory's timeline (dot -> :class:`EventData`, :mod:`._eventlog`),
      compacted to ``keep`` unprotected events (sets keep none).
    """

    header: Header
    ctx: dict[str, int]
    forgotten: bool
    body: dict[Any, Any]
    events: dict[Dot, EventData] = field(default_factory=dict)
    keep: int = DEFAULT_KEEP

    def copy(self) -> KeyState:
        return KeyState(self.header, dict(self.ctx), self.forgotten, dict(self.body),
                        dict(self.events), self.keep)

    def standing(self) -> list[tuple[Dot, VersionData]]:
        """The visible versions, ordered by dot (an lww DELETE hides the memory)."""
        if self.forgotten or self.header.kind != KIND_MEMORY:
            return []
        return [(d, v) for d, v in sorted(self.body.items()) if v.op != OP_DELETE]

    def live(self) -> bool:
        if self.forgotten:
            return False
        if self.header.kind == KIND_SET:
            return bool(self.body)
        return bool(self.standing())

    def protected(self) -> Collection[Dot]:
        """The dots whose events compaction never drops: under "mv" the standing
        versions (the dot-store rule makes the rest only grow: see :mod:`._eventlog`);
        none under "lww" (a faulty peer's variant of a dot can stand again there) nor in
        a tombstone."""
        if self.forgotten or self.header.policy != "mv":
            return ()
        return self.body.keys()


# --------------------------------------------------------------------------- join


def _kind_rank(state: KeyState) -> tuple[int, int]:
    return (state.header.kind, POLICIES.index(state.header.policy))


def _header_order(header: Header) -> bytes:
    """The bytes two headers of one key are ordered by: every field as plain data, the
    origin of ``created`` spelled out, so headers that differ anywhere never tie."""
    created = header.created
    # every field is None, bool, int, str or a tuple of them: already canonical, so the
    # C packer alone gives packb's bytes
    return pack_canonical((header.key, header.kind, header.app_id, header.user_id,
                           header.agent_id, header.run_id, header.policy, header.tier,
                           header.priority, None if created is None else
                           (created.wall_ms, created.logical, created.replica),
                           header.expires_at))


#: The bytes of every field of a header (what signed writes sign: storage/_proofs.py).
header_order = _header_order


def join(a: KeyState, b: KeyState) -> KeyState:
    """The least upper bound of two states of one key (commutative, associative,
    idempotent). Returns a new state; mutates neither.

    Two headers of one key differ only if a faulty peer made them (or two replicas
    created one set with different scopes), so every tie-break ends in a comparison
    that cannot tie for unequal inputs: (kind, policy), then the header's bytes
    (:func:`_header_order`); the context entry-wise max; forgotten absorbs all content;
    an mv version shipped under one dot with different data keeps the lowest bytes
    (``MVRegister.merge``); lww keeps the greatest ``(timestamp, bytes of (origin,
    counter, version))`` (``LWWRegister.merge``); set elements join by the dot-store rule;
    ``keep`` the min; the events by union, compacted (:mod:`._eventlog`), a tombstone
    keeping only the FORGET events of its forgotten sides.
    """
    ra, rb = _kind_rank(a), _kind_rank(b)
    if ra != rb:
        return (a if ra < rb else b).copy()
    header = a.header
    if a.header != b.header:
        header = min(a.header, b.header, key=_header_order)
    ctx = dict(a.ctx)
    for origin, counter in b.ctx.items():
        if counter > ctx.get(origin, 0):
            ctx[origin] = counter
    forgotten = a.forgotten or b.forgotten
    keep = min(a.keep, b.keep)
    body: dict[Any, Any] = {}
    events: dict[Dot, EventData] = {}
    if forgotten:  # the tombstone keeps the FORGET events of the forgotten sides only
        sides = [s.events for s in (a, b) if s.forgotten]
        events = compact(join_events(*sides) if len(sides) == 2 else dict(sides[0]), keep, ())
    else:
        if header.policy == "mv":
            reg: MVRegister[Any] = _dot_store(MVRegister, a)
            reg.merge(_dot_store(MVRegister, b))
            body = reg.entries
        elif header.policy == "lww":
            body = _join_lww(a.body, b.body)
        else:
            oset: ORSet[Any] = _dot_store(ORSet, a)
            oset.merge(_dot_store(ORSet, b))
            body = oset.entries
        if a.events or b.events:
            events = join_events(a.events, b.events)
            if header.policy == "mv":
                events = compact(events, keep, body.keys())
            else:
                events = compact(events, keep, ())
    return KeyState(header, ctx, forgotten, body, events, keep)


_Store = TypeVar("_Store", MVRegister[Any], ORSet[Any])


def _dot_store(kind: type[_Store], state: KeyState) -> _Store:
    """``state``'s body and context as the CRDT type, unchecked: a body is valid (built by
    the mutators below or checked by the decoder)."""
    return unchecked(kind, state.body, CausalContext(state.ctx))


def _lww(body: dict[Dot, VersionData]) -> LWWRegister[Any]:
    reg: LWWRegister[Any] = LWWRegister()
    if body:  # fields set directly: see _dot_store
        ((dot, version),) = body.items()
        reg.timestamp = version.stamp(dot)
        reg.value = (dot.replica, dot.counter, version)
    return reg


def _join_lww(a: dict[Dot, VersionData], b: dict[Dot, VersionData]) -> dict[Dot, VersionData]:
    reg = _lww(a)
    reg.merge(_lww(b))
    if reg.value is None:
        return {}
    replica, counter, version = reg.value
    return {Dot(replica, counter): version}


def unseen_by(state: KeyState, marks: Mapping[str, int]) -> KeyState:
    """``state`` without the timeline events of every origin ``o`` whose latest event on
    the key is within ``marks[o]``: a replica with those watermarks holds this key's
    events of ``o`` (or compacted them away, and a join compacts them away again: see
    :mod:`._eventlog`), so its join with the result is its join with ``state``
    (delta-state, Almeida, Shoker, Baquero 2018). The events of an origin with a later
    event go along: a watermark covers a key only up to its latest event of that
    origin. Returns ``state`` itself when nothing goes."""
    held = {o for o, counter in state.ctx.items() if counter <= marks.get(o, 0)}
    if not held or not any(d.replica in held for d in state.events):
        return state
    kept = {d: e for d, e in state.events.items() if d.replica not in held}
    return KeyState(state.header, state.ctx, state.forgotten, state.body, kept, state.keep)


# ----------------------------------------------------------------------- mutators


def _fresh(state: KeyState, dot: Dot, kind: int) -> dict[str, int]:
    """``state``'s context with ``dot`` added; ``state`` must be a live key of ``kind``
    (a mutator never undoes a tombstone) and ``dot`` new to it."""
    if state.forgotten or state.header.kind != kind:
        raise InvalidArgumentError(f"key {state.header.key!r} is forgotten or of another kind")
    if dot.counter <= state.ctx.get(dot.replica, 0):
        raise InvalidArgumentError(f"{dot} is not a fresh dot for key {state.header.key!r}")
    ctx = dict(state.ctx)
    ctx[dot.replica] = dot.counter
    return ctx


def _logged(state: KeyState, ctx: dict[str, int], forgotten: bool, body: dict[Any, Any],
            dot: Dot, event: EventData) -> KeyState:
    """The new state of a memory with ``event`` (its context set to ``ctx``) logged
    under ``dot``, compacted like a join would."""
    events = dict(state.events) if not forgotten else \
        {d: e for d, e in state.events.items() if e.op == OP_FORGET}
    events[dot] = event._replace(ctx=tuple(sorted(ctx.items())))
    new = KeyState(state.header, ctx, forgotten, body, events, state.keep)
    new.events = compact(events, state.keep, new.protected())
    return new


def mark(op: int, actor: str | None, role: str | None, stamp: Timestamp,
         detail: dict[str, Any] | None = None) -> EventData:
    """An event that writes no version (NOOP, an "mv" DELETE, FORGET) at ``stamp``; its
    context is filled in by the mutator that logs it."""
    return EventData(op, actor, role, stamp.wall_ms, stamp.logical, (), detail or {}, None)


def check_inputs(state: KeyState, inputs: Iterable[tuple[str, int]]) -> None:
    """Raise unless ``state`` has seen every ``(origin, counter)`` of ``inputs`` (what a
    RESOLVE may name)."""
    for replica, counter in inputs:
        if counter > state.ctx.get(replica, 0):
            raise InvalidArgumentError(
                f"{Dot(replica, counter)} is not a version this replica has seen")


def create(header: Header, dot: Dot, version: VersionData, *, keep: int = DEFAULT_KEEP,
           detail: dict[str, Any] | None = None) -> KeyState:
    """A new memory whose first version is ``version``, written under ``dot``, logged as
    its ADD event; the timeline keeps ``keep`` unprotected events."""
    ctx = {dot.replica: dot.counter}
    new = KeyState(header, ctx, False, {dot: version},
                   {dot: version_event(version, ctx, detail)}, keep)
    new.events = compact(new.events, keep, new.protected())  # lww with keep 0: none
    return new


def write(state: KeyState, dot: Dot, version: VersionData,
          detail: dict[str, Any] | None = None) -> KeyState:
    """``state`` with ``version`` written under the fresh ``dot`` (and logged).

    Under "mv" the version supersedes every standing version (``MVRegister.write``),
    a RESOLVE exactly its inputs, which the key must have seen: a version written
    concurrently with the resolution still stands. Under "lww" it is an
    ``LWWRegister`` write at the version's timestamp (a DELETE too).
    """
    ctx = _fresh(state, dot, KIND_MEMORY)
    event = version_event(version, ctx, detail)
    if state.header.policy == "lww":
        return _logged(state, ctx, False, _join_lww(state.body, {dot: version}), dot, event)
    if version.op == OP_DELETE:
        raise InvalidArgumentError('DELETE versions exist only under "lww"')
    body: dict[Any, Any] = {}
    if version.op == OP_RESOLVE:
        check_inputs(state, version.inputs)
        inputs = set(version.inputs)
        body = {d: v for d, v in state.body.items() if (d.replica, d.counter) not in inputs}
    body[dot] = version
    return _logged(state, ctx, False, body, dot, event)


def clear(state: KeyState, dot: Dot, event: EventData | None = None) -> KeyState:
    """``state`` with every standing version removed (``MVRegister.clear``, an
    observed-remove: a concurrent write survives it), as the event ``dot`` (a DELETE
    made by :func:`mark`)."""
    ctx = _fresh(state, dot, KIND_MEMORY)
    if event is None:
        event = EventData(OP_DELETE, None, None, 0, 0, (), {})
    return _logged(state, ctx, False, {}, dot, event)


def noop(state: KeyState, dot: Dot, event: EventData) -> KeyState:
    """``state`` with the NOOP ``event`` (made by :func:`mark`) logged under ``dot``: a
    write that was absorbed; the standing versions do not change."""
    ctx = _fresh(state, dot, KIND_MEMORY)
    return _logged(state, ctx, False, dict(state.body), dot, event._replace(op=OP_NOOP))


def forget(state: KeyState, dot: Dot, event: EventData | None = None) -> KeyState:
    """The erasure tombstone of ``state``, as the event ``dot``: it keeps the header, the
    context and (for a memory) the FORGET ``event`` (who erased it, when: no content),
    and absorbs every concurrent and later state of the key."""
    ctx = _fresh(state, dot, state.header.kind)
    if state.header.kind != KIND_MEMORY:
        return KeyState(state.header, ctx, True, {}, {}, state.keep)
    if event is None:
        event = EventData(OP_FORGET, None, None, 0, 0, (), {})
    return _logged(state, ctx, True, {}, dot, event._replace(op=OP_FORGET, detail={}))


def set_add(state: KeyState, element: object, dot: Dot) -> KeyState:
    """``state`` with ``element`` added under ``dot`` (``ORSet.add``: the add supersedes
    the adds of ``element`` it has seen)."""
    ctx = _fresh(state, dot, KIND_SET)
    body = dict(state.body)
    body[check_element(element)] = frozenset((dot,))
    return KeyState(state.header, ctx, False, body, {}, state.keep)


def set_remove(state: KeyState, element: object, dot: Dot) -> KeyState:
    """``state`` without the observed adds of ``element`` (``ORSet.remove``), as the
    event ``dot``."""
    ctx = _fresh(state, dot, KIND_SET)
    body = dict(state.body)
    body.pop(check_element(element), None)
    return KeyState(state.header, ctx, False, body, {}, state.keep)

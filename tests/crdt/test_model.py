"""Model-based test: three replicas of every type against a reference model.

The shape of riak_dt's ``crdt_statem_eqc``: random operations at three replicas, whose
deltas travel encoded through a hostile network that reorders, duplicates, and drops
them (dropped deltas are resent later), with occasional full-state syncs.  After every
step, each replica's state must equal what an abstract model says it holds (the model
knows nothing of contexts or compaction: it keeps sets of named events); at the end,
after every delta reached every replica, all replicas must be equal byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from memmesh.crdt import HLC, Dot, LWWRegister, MVRegister, ORSet, Timestamp, decode, encode

REPLICAS = ("A", "B", "C")
ELEMENTS = st.sampled_from(("x", "y", "z", 1, ("t", 2)))
VALUES = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none(), st.binary(max_size=2))
WHO = st.integers(0, len(REPLICAS) - 1)
WALL = st.integers(0, 1_000)


Effect = tuple[frozenset[Any], frozenset[Dot], frozenset[Dot]]


@dataclass
class EventModel:
    """Named events (``events``), the dots removed, the dots seen: a replica's model
    state, and what a delta carries to another (``snapshot``, ``absorb``)."""

    events: set[tuple[Any, Any]] = field(default_factory=set)
    removed: set[Dot] = field(default_factory=set)
    seen: set[Dot] = field(default_factory=set)

    def snapshot(self) -> Effect:
        return frozenset(self.events), frozenset(self.removed), frozenset(self.seen)

    def absorb(self, effect: Effect) -> None:
        events, removed, seen = effect
        self.events |= events
        self.removed |= removed
        self.seen |= seen


@dataclass
class SetModel(EventModel):
    """An add-wins set: the events are its adds ``(element, dot)``."""

    def live(self, element: Any) -> set[Dot]:
        return {d for e, d in self.events if e == element and d not in self.removed}

    def entries(self) -> dict[Any, frozenset[Dot]]:
        out: dict[Any, set[Dot]] = {}
        for element, dot in self.events:
            if dot not in self.removed:
                out.setdefault(element, set()).add(dot)
        return {e: frozenset(ds) for e, ds in out.items()}


@dataclass
class RegisterModel(EventModel):
    """A multi-value register: the events are its writes ``(dot, value)``, and a write
    removes the writes it superseded."""

    def live(self) -> set[Dot]:
        return {d for d, _ in self.events if d not in self.removed}

    def items(self) -> tuple[tuple[Dot, Any], ...]:
        return tuple(sorted((d, v) for d, v in self.events if d not in self.removed))


@dataclass
class Replica:
    name: str
    orset: ORSet[Any] = field(default_factory=ORSet)
    mv: MVRegister[Any] = field(default_factory=MVRegister)
    lww: LWWRegister[Any] = field(default_factory=LWWRegister)
    clock: HLC = field(init=False)
    wall: int = 0
    set_model: SetModel = field(default_factory=SetModel)
    mv_model: RegisterModel = field(default_factory=RegisterModel)
    lww_model: set[tuple[Timestamp, Any]] = field(default_factory=set)
    set_counter: int = 0
    mv_counter: int = 0

    def __post_init__(self) -> None:
        self.clock = HLC(self.name)

    def next_set_dot(self) -> Dot:
        self.set_counter += 1
        return Dot(self.name, self.set_counter)

    def next_mv_dot(self) -> Dot:
        self.mv_counter += 1
        return Dot(self.name, self.mv_counter)


@dataclass(frozen=True)
class Message:
    to: int
    kind: str
    data: bytes
    effect: Any


class ConvergenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.replicas = [Replica(name) for name in REPLICAS]
        self.pending: list[Message] = []
        self.dropped: list[Message] = []

    # -- local operations ----------------------------------------------------------

    def _broadcast(self, origin: int, kind: str, delta: Any, effect: Any) -> None:
        data = encode(delta)
        for to in range(len(self.replicas)):
            if to != origin:
                self.pending.append(Message(to, kind, data, effect))

    @rule(who=WHO, element=ELEMENTS)
    def add(self, who: int, element: Any) -> None:
        r = self.replicas[who]
        dot = r.next_set_dot()
        old = frozenset(r.set_model.live(element))
        effect = (frozenset({(element, dot)}), old, old | {dot})
        r.set_model.absorb(effect)
        delta = r.orset.add(element, r.name)
        self._broadcast(who, "orset", delta, effect)

    @rule(who=WHO, element=ELEMENTS, mint=st.booleans())
    def remove(self, who: int, element: Any, mint: bool) -> None:
        r = self.replicas[who]
        old = frozenset(r.set_model.live(element))
        seen = old | {r.next_set_dot()} if mint else old
        effect = (frozenset(), old, seen)
        r.set_model.absorb(effect)
        delta = r.orset.remove(element, r.name if mint else None)
        self._broadcast(who, "orset", delta, effect)

    @rule(who=WHO, value=VALUES)
    def mv_write(self, who: int, value: Any) -> None:
        r = self.replicas[who]
        dot = r.next_mv_dot()
        old = frozenset(r.mv_model.live())
        effect = (frozenset({(dot, value)}), old, old | {dot})
        r.mv_model.absorb(effect)
        delta = r.mv.write(value, r.name)
        self._broadcast(who, "mv", delta, effect)

    @rule(who=WHO)
    def mv_clear(self, who: int) -> None:
        r = self.replicas[who]
        old = frozenset(r.mv_model.live())
        effect = (frozenset(), old, old | {r.next_mv_dot()})
        r.mv_model.absorb(effect)
        delta = r.mv.clear(r.name)
        self._broadcast(who, "mv", delta, effect)

    @rule(who=WHO, value=VALUES, wall=WALL)
    def lww_write(self, who: int, value: Any, wall: int) -> None:
        r = self.replicas[who]
        r.wall = wall  # the wall clock may jump backwards
        stamp = r.clock.now(wall)
        assert r.lww.timestamp is None or stamp > r.lww.timestamp
        r.lww_model.add((stamp, value))
        delta = r.lww.write(value, stamp)
        self._broadcast(who, "lww", delta, (stamp, value))

    # -- the network ---------------------------------------------------------------

    def _deliver(self, message: Message) -> None:
        r = self.replicas[message.to]
        delta = decode(message.data)
        if message.kind == "orset":
            assert isinstance(delta, ORSet)
            r.orset.merge(delta)
            r.set_model.absorb(message.effect)
        elif message.kind == "mv":
            assert isinstance(delta, MVRegister)
            r.mv.merge(delta)
            r.mv_model.absorb(message.effect)
        else:
            assert isinstance(delta, LWWRegister) and delta.timestamp is not None
            r.clock.observe(delta.timestamp, r.wall)
            r.lww.merge(delta)
            r.lww_model.add(message.effect)

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 10_000))
    def deliver(self, pick: int) -> None:
        self._deliver(self.pending.pop(pick % len(self.pending)))

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 10_000))
    def deliver_duplicate(self, pick: int) -> None:
        self._deliver(self.pending[pick % len(self.pending)])

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 10_000))
    def drop(self, pick: int) -> None:
        self.dropped.append(self.pending.pop(pick % len(self.pending)))

    @precondition(lambda self: self.dropped)
    @rule()
    def resend_dropped(self) -> None:
        self.pending.extend(self.dropped)
        self.dropped.clear()

    @rule(source=WHO, destination=WHO)
    def full_sync(self, source: int, destination: int) -> None:
        src, dst = self.replicas[source], self.replicas[destination]
        orset, mv, lww = (decode(encode(s)) for s in (src.orset, src.mv, src.lww))
        assert isinstance(orset, ORSet) and isinstance(mv, MVRegister)
        assert isinstance(lww, LWWRegister)
        dst.orset.merge(orset)
        dst.mv.merge(mv)
        if lww.timestamp is not None:
            dst.clock.observe(lww.timestamp, dst.wall)
        dst.lww.merge(lww)
        dst.set_model.absorb(src.set_model.snapshot())
        dst.mv_model.absorb(src.mv_model.snapshot())
        dst.lww_model |= src.lww_model

    # -- checks --------------------------------------------------------------------

    @invariant()
    def every_replica_matches_its_model(self) -> None:
        for r in self.replicas:
            assert r.orset.entries == r.set_model.entries()
            assert r.orset.value == frozenset(r.set_model.entries())
            assert set(r.orset.context.dots()) == r.set_model.seen
            assert r.mv.items() == r.mv_model.items()
            assert set(r.mv.context.dots()) == r.mv_model.seen
            if r.lww_model:
                stamp, value = max(r.lww_model, key=lambda item: item[0])
                assert (r.lww.timestamp, r.lww.value) == (stamp, value)
            else:
                assert r.lww == LWWRegister()

    def teardown(self) -> None:
        self.pending.extend(self.dropped)
        self.dropped.clear()
        while self.pending:
            self._deliver(self.pending.pop())  # newest first: the least causal order
        self.every_replica_matches_its_model()
        first = self.replicas[0]
        for r in self.replicas[1:]:
            assert r.orset == first.orset
            assert r.mv == first.mv
            assert r.lww == first.lww
            for mine, theirs in ((r.orset, first.orset), (r.mv, first.mv), (r.lww, first.lww)):
                assert encode(mine) == encode(theirs)
            assert r.set_model == first.set_model
            assert r.mv_model == first.mv_model


ConvergenceMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_three_replicas_converge_to_the_model = ConvergenceMachine.TestCase

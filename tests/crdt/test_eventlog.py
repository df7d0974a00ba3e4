"""The timeline CRDT (``memmesh.crdt._eventlog`` inside ``keystate``): the union of
events by dot, compacted to the top ``keep`` by a total order, is a semilattice; replicas
that exchange states in any order hold the same timeline, intermediate updates and
NOOPs included; compaction bounds it; ``standing_at`` replays the past."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import Dot, Timestamp
from memmesh.crdt import keystate as ks
from memmesh.crdt.keystate import (
    KIND_MEMORY,
    MAX_KEEP,
    OP_DELETE,
    OP_NOOP,
    OP_UPDATE,
    EventData,
    Header,
    VersionData,
    compact,
    join,
    join_events,
    standing_at,
)
from memmesh.crdt.testing import key_states
from memmesh.storage._keycodec import decode, encode

ORIGINS = ("ra", "rb", "rc")


@st.composite
def _logs(draw: st.DrawFn) -> dict[Dot, EventData]:
    """Event logs over a few dots; one dot may carry different data in two logs (a
    faulty peer's variant)."""
    out: dict[Dot, EventData] = {}
    for dot in draw(st.sets(st.builds(Dot, st.sampled_from(ORIGINS), st.integers(1, 6)),
                            max_size=8)):
        out[dot] = EventData(draw(st.sampled_from((0, 1, OP_NOOP))),
                             draw(st.sampled_from((None, "alice"))), None,
                             draw(st.integers(1, 4)), draw(st.integers(0, 1)), (), {})
    return out


@settings(max_examples=300)
@given(_logs(), _logs(), _logs(), st.integers(0, 4))
def test_union_then_top_k_is_associative_commutative_and_idempotent(
        a: dict[Dot, EventData], b: dict[Dot, EventData], c: dict[Dot, EventData],
        keep: int) -> None:
    def j(x: dict[Dot, EventData], y: dict[Dot, EventData]) -> dict[Dot, EventData]:
        return compact(join_events(x, y), keep, ())

    a, b, c = (compact(x, keep, ()) for x in (a, b, c))
    assert j(a, b) == j(b, a)
    assert j(j(a, b), c) == j(a, j(b, c))
    assert j(a, a) == a
    # compaction is a homomorphism: compacting first loses nothing the join keeps
    assert j(a, b) == compact(join_events(a, b), keep, ())


@settings(max_examples=200)
@given(st.data())
def test_the_join_of_states_with_timelines_is_a_semilattice(data: st.DataObject) -> None:
    policy = data.draw(st.sampled_from(("mv", "lww")))
    a, b, c = (data.draw(key_states(policy)) for _ in range(3))
    assert encode(join(a, b)) == encode(join(b, a))
    assert encode(join(join(a, b), c)) == encode(join(a, join(b, c)))
    assert encode(join(a, a)) == encode(a)
    for state in (a, b, c, join(join(a, b), c)):
        assert encode(decode(encode(state))) == encode(state)


# -- a small model: replicas writing one memory, exchanging states in any order ---------

_HEADER = Header("m", KIND_MEMORY, None, "u", None, None, "mv", "shared", False,
                 Timestamp(1, 0, "ra"), None)


class _Fleet:
    """Replicas of one memory, each minting dots of its own origin and stamping events
    from one shared, increasing clock (an HLC would give the same order)."""

    def __init__(self, n: int, keep: int, policy: str) -> None:
        header = _HEADER._replace(policy=policy)
        first = VersionData("v0", "alice", None, 1, 0, 1.0, {}, 0)
        base = ks.create(header, Dot("ra", 1), first, keep=keep)
        self.states = [base.copy() for _ in range(n)]
        self.counters = {o: 1 if o == "ra" else 0 for o in ORIGINS}
        self.wall = 1
        self.minted: set[Dot] = {Dot("ra", 1)}

    def step(self, at: int, op: str) -> None:
        origin = ORIGINS[at]
        state = self.states[at]
        if not state.live():
            return
        self.counters[origin] = max(self.counters[origin], state.ctx.get(origin, 0)) + 1
        dot = Dot(origin, self.counters[origin])
        self.wall += 1
        stamp = Timestamp(self.wall, 0, origin)
        if op == "update":
            version = VersionData(f"t{self.wall}", origin, None, self.wall, 0, 1.0, {},
                                  OP_UPDATE)
            new = ks.write(state, dot, version)
        elif op == "noop":
            new = ks.noop(state, dot, ks.mark(OP_NOOP, origin, None, stamp, {"why": "dup"}))
        elif state.header.policy == "mv":
            new = ks.clear(state, dot, ks.mark(OP_DELETE, origin, "lead", stamp))
        else:
            deleted = VersionData(None, origin, None, self.wall, 0, 1.0, {}, OP_DELETE)
            new = ks.write(state, dot, deleted)
        self.states[at] = new
        self.minted.add(dot)

    def send(self, source: int, target: int) -> None:
        self.states[target] = join(self.states[target], self.states[source])


_STEPS = st.lists(st.tuples(st.sampled_from(("op", "send")), st.integers(0, 2),
                            st.integers(0, 2), st.sampled_from(("update", "noop", "delete"))),
                  max_size=25)


def _settle(fleet: _Fleet, n: int, order: list[int]) -> None:
    sources = [i for i in order if i < n]
    for _ in range(2):
        for source in sources:
            for target in range(n):
                fleet.send(source, target)


@settings(max_examples=200)
@given(st.integers(2, 3), _STEPS, st.permutations([0, 1, 2]),
       st.sampled_from(("mv", "lww")))
def test_replicas_converge_to_one_timeline_with_every_event_in_any_sync_order(
        n: int, steps: list[tuple[str, int, int, str]], order: list[int], policy: str) -> None:
    fleet = _Fleet(n, MAX_KEEP, policy)
    for kind, a, b, op in steps:
        a, b = a % n, b % n
        if kind == "op":
            fleet.step(a, op)
        else:
            fleet.send(a, b)
    _settle(fleet, n, order)
    first = encode(fleet.states[0])
    assert all(encode(s) == first for s in fleet.states)
    state = fleet.states[0]
    if not state.forgotten:  # uncompacted: every event made anywhere, NOOPs included
        assert set(state.events) == fleet.minted


@settings(max_examples=200)
@given(st.integers(2, 3), _STEPS, st.permutations([0, 1, 2]), st.integers(0, 4),
       st.sampled_from(("mv", "lww")))
def test_compacted_timelines_converge_and_stay_within_the_bound(
        n: int, steps: list[tuple[str, int, int, str]], order: list[int], keep: int,
        policy: str) -> None:
    fleet = _Fleet(n, keep, policy)
    for kind, a, b, op in steps:
        a, b = a % n, b % n
        if kind == "op":
            fleet.step(a, op)
        else:
            fleet.send(a, b)
        for s in fleet.states:
            assert len([d for d in s.events if d not in s.protected()]) <= keep
    _settle(fleet, n, order)
    first = encode(fleet.states[0])
    assert all(encode(s) == first for s in fleet.states)
    state = fleet.states[0]
    # the standing versions' events are always kept under "mv"
    if policy == "mv":
        assert set(state.body) <= set(state.events)


@settings(max_examples=150)
@given(st.lists(st.sampled_from(("update", "noop", "delete")), max_size=12),
       st.sampled_from(("mv", "lww")))
def test_standing_at_replays_what_stood_after_each_event(ops: list[str], policy: str) -> None:
    fleet = _Fleet(1, MAX_KEEP, policy)
    seen: list[tuple[int, list[Any]]] = [(fleet.wall, fleet.states[0].standing())]
    for op in ops:
        fleet.step(0, op)
        seen.append((fleet.wall, fleet.states[0].standing()))
    events = fleet.states[0].events
    for wall, standing in seen:
        assert standing_at(events, policy, (wall, 2**32, "")) == standing
    assert standing_at(events, policy, (0, 0, "")) is None


def test_a_concurrent_update_survives_in_the_replayed_past() -> None:
    fleet = _Fleet(2, MAX_KEEP, "mv")
    fleet.send(0, 1)
    fleet.step(0, "update")
    fleet.step(1, "update")  # concurrent with ra's
    fleet.step(0, "delete")  # ra deletes what it saw: its own update only
    fleet.send(0, 1)
    fleet.send(1, 0)
    state = fleet.states[0]
    assert [v.text for _, v in state.standing()] == ["t3"]
    assert [v.text for _, v in standing_at(state.events, "mv", (4, 2**32, "")) or []] == ["t3"]
    assert sorted(v.text for _, v in standing_at(state.events, "mv", (3, 2**32, "")) or []) \
        == ["t2", "t3"]


def test_forget_keeps_only_content_free_forget_events() -> None:
    fleet = _Fleet(2, MAX_KEEP, "mv")
    fleet.send(0, 1)
    fleet.step(1, "update")
    forgotten = ks.forget(fleet.states[0], Dot("ra", 9),
                          ks.mark(0, "alice", "lead", Timestamp(50, 0, "ra"), {"x": 1}))
    merged = join(fleet.states[1], forgotten)
    assert merged.forgotten and not merged.body
    assert [(e.op, e.actor, e.role, e.version, e.detail) for e in merged.events.values()] == \
        [(ks.OP_FORGET, "alice", "lead", None, {})]
    assert encode(merged) == encode(join(forgotten, fleet.states[1]))


@settings(max_examples=200)
@given(st.integers(2, 3), _STEPS, st.integers(0, 4), st.sampled_from(("mv", "lww")))
def test_shipping_without_the_events_a_peer_holds_joins_to_the_same_state(
        n: int, steps: list[tuple[str, int, int, str]], keep: int, policy: str) -> None:
    """``unseen_by(source, marks)`` with marks the target's context (what it holds of
    each origin on this key) is a delta: joined, it gives the whole source's join."""
    whole, delta = _Fleet(n, keep, policy), _Fleet(n, keep, policy)
    for kind, a, b, op in steps:
        a, b = a % n, b % n
        if kind == "op":
            whole.step(a, op)
            delta.step(a, op)
        else:
            whole.send(a, b)
            target = delta.states[b]
            delta.states[b] = join(target, ks.unseen_by(delta.states[a], target.ctx))
        assert [encode(s) for s in whole.states] == [encode(s) for s in delta.states]
    source, target = whole.states[0], whole.states[-1]
    stripped = ks.unseen_by(source, target.ctx)
    assert all(source.ctx[d.replica] > target.ctx.get(d.replica, 0) for d in stripped.events)

"""Hypothesis strategies and a convergence checker for property tests of memmesh states.

memmesh sits inside people's own convergence suites (as ``trio.testing`` does for trio
users): this module gives them the pieces memmesh's own tests use. It needs
``hypothesis`` (the ``test`` extra). README, "Property tests of your own", shows a test.

* Data: :func:`replica_ids`, :func:`elements`, :func:`values`, :func:`dots`,
  :func:`timestamps`, :func:`causal_contexts`; memory key states: :func:`key_states`,
  :func:`key_state_variants` (one field changed, as a faulty peer might).
* :class:`Operation` (one mutator call at one replica; :func:`add`, :func:`remove`,
  :func:`write`, :func:`clear`, :func:`lww_write`, :func:`operations`), :class:`Schedule`
  (adversarial delivery: out of order, duplicated, dropped then resent; :func:`schedules`)
  and :func:`states` (reachable states, gaps of non-causal delivery included).
* :func:`check_convergence`: the delta law, convergence and equal bytes, for any type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from hypothesis import strategies as st

from ._causal_context import CausalContext
from ._codec import decode, encode
from ._dot import Dot
from ._hlc import Timestamp
from ._join import Joinable, join
from ._lwwregister import LWWRegister
from ._mvregister import MVRegister
from ._orset import ORSet
from .keystate import (
    DEFAULT_KEEP,
    KIND_MEMORY,
    KIND_SET,
    OP_ADD,
    OP_DELETE,
    OP_FORGET,
    OP_NOOP,
    OP_RESOLVE,
    OP_UPDATE,
    EventData,
    Header,
    KeyState,
    VersionData,
    compact,
    version_event,
)

__all__ = [
    "DEFAULT_REPLICAS",
    "ConvergenceFailure",
    "Deliver",
    "Mutate",
    "Operation",
    "Schedule",
    "Step",
    "Sync",
    "add",
    "causal_contexts",
    "check_convergence",
    "clear",
    "dots",
    "elements",
    "key_state_variants",
    "key_states",
    "lww_write",
    "operations",
    "remove",
    "replica_ids",
    "schedules",
    "states",
    "timestamps",
    "values",
    "write",
]

S = TypeVar("S", bound=Joinable)

#: The replica ids used when none are given.
DEFAULT_REPLICAS: tuple[str, ...] = ("r0", "r1", "r2")

_MEMMESH_TYPES = (ORSet, MVRegister, LWWRegister)


# -- plain data --------------------------------------------------------------------


def replica_ids() -> st.SearchStrategy[str]:
    """Valid replica ids (short, with a bias towards a few colliding names)."""
    return st.one_of(
        st.sampled_from(DEFAULT_REPLICAS),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    )


def elements() -> st.SearchStrategy[Any]:
    """Valid ORSet elements, biased towards a few that collide, so ops interfere."""
    scalar = st.one_of(
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.text(st.characters(codec="utf-8"), max_size=6),
        st.binary(max_size=4),
    )
    return st.one_of(
        st.sampled_from(("a", "b", "c", 0, 1, b"a", None)),
        scalar,
        st.tuples(scalar, scalar),
    )


def values() -> st.SearchStrategy[Any]:
    """Plain values for registers: JSON-like data plus bytes, as stored by memmesh.

    Lists are generated as tuples, since that is how every value reads back.
    """
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=False).map(lambda f: 0.0 if f == 0.0 else f),
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.binary(max_size=8),
    )
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=4), inner, max_size=3),
        ),
        max_leaves=6,
    )


def dots(
    replicas: Sequence[str] = DEFAULT_REPLICAS, max_counter: int = 8
) -> st.SearchStrategy[Dot]:
    """Dots of the given replicas with small counters (so they collide)."""
    return st.builds(Dot, st.sampled_from(replicas), st.integers(1, max_counter))


def timestamps(replicas: Sequence[str] = DEFAULT_REPLICAS) -> st.SearchStrategy[Timestamp]:
    """Hybrid timestamps with small components (so they tie on wall time)."""
    return st.builds(Timestamp, st.integers(0, 5), st.integers(0, 3), st.sampled_from(replicas))


def causal_contexts(replicas: Sequence[str] = DEFAULT_REPLICAS) -> st.SearchStrategy[CausalContext]:
    """Arbitrary contexts: version vectors plus clouds with gaps."""
    return st.builds(
        CausalContext,
        st.dictionaries(st.sampled_from(replicas), st.integers(0, 5), max_size=len(replicas)),
        st.sets(dots(replicas, max_counter=10), max_size=6),
    )


# -- operations --------------------------------------------------------------------


@dataclass(frozen=True)
class Operation(Generic[S]):
    """One mutator call, made at replica number ``replica``.

    ``mutate(state, replica_id)`` applies it in place and returns the delta; ``name``
    and ``args`` describe it (they are what hypothesis prints when a test fails).
    """

    replica: int
    name: str
    args: tuple[Any, ...]
    mutate: Callable[[S, str], S] = field(repr=False, compare=False)


def add(element: Any, replica: int = 0) -> Operation[ORSet[Any]]:
    """``ORSet.add(element, replica_id)`` at replica number ``replica``."""
    return Operation(replica, "add", (element,), lambda s, r: s.add(element, r))


def remove(element: Any, replica: int = 0, *, mint: bool = False) -> Operation[ORSet[Any]]:
    """``ORSet.remove(element)``; with ``mint``, the removal mints a dot of its replica."""
    if mint:
        return Operation(replica, "remove", (element, "mint"), lambda s, r: s.remove(element, r))
    return Operation(replica, "remove", (element,), lambda s, r: s.remove(element))


def write(value: Any, replica: int = 0) -> Operation[MVRegister[Any]]:
    """``MVRegister.write(value, replica_id)``."""
    return Operation(replica, "write", (value,), lambda s, r: s.write(value, r))


def clear(replica: int = 0) -> Operation[MVRegister[Any]]:
    """``MVRegister.clear(replica_id)``."""
    return Operation(replica, "clear", (), lambda s, r: s.clear(r))


def lww_write(
    value: Any, replica: int = 0, wall_ms: int = 0, logical: int = 0
) -> Operation[LWWRegister[Any]]:
    """``LWWRegister.write(value, Timestamp(wall_ms, logical, replica_id))``."""
    return Operation(
        replica,
        "write",
        (value, wall_ms, logical),
        lambda s, r: s.write(value, Timestamp(wall_ms, logical, r)),
    )


def operations(
    kind: type[Any],
    *,
    replicas: int = len(DEFAULT_REPLICAS),
    elements: st.SearchStrategy[Any] | None = None,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Operation[Any]]:
    """Random operations for ``kind`` (``ORSet``, ``MVRegister`` or ``LWWRegister``)."""
    at = st.integers(0, replicas - 1)
    if kind is ORSet:
        items = _elements() if elements is None else elements
        return st.one_of(
            st.builds(add, items, at),
            st.builds(remove, items, at, mint=st.booleans()),
        )
    data = _values() if values is None else values
    if kind is MVRegister:
        return st.one_of(st.builds(write, data, at), st.builds(clear, at))
    if kind is LWWRegister:
        return st.builds(lww_write, data, at, st.integers(0, 5), st.integers(0, 3))
    raise TypeError(f"no operations known for {kind!r}; build Operation objects directly")


_elements = elements
_values = values


# -- schedules ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mutate:
    """Apply the next operation, at its own replica."""


@dataclass(frozen=True)
class Deliver:
    """Deliver produced delta number ``delta`` (modulo the number produced so far) to
    replica ``to`` (modulo the number of replicas); repeats make duplicates."""

    delta: int
    to: int


@dataclass(frozen=True)
class Sync:
    """Join the full state of replica ``source`` into replica ``target``."""

    source: int
    target: int


Step: TypeAlias = Mutate | Deliver | Sync


@dataclass(frozen=True)
class Schedule:
    """Steps to run, then the resend phase: every delta to every replica.

    Operations left over when the steps run out are applied first.  The resend phase
    starts at delta ``resend_rotation`` and goes backwards (newest first, the most
    non-causal order) when ``resend_reversed``: deltas never delivered in the steps
    were "dropped" and are resent now; the others arrive once more (duplicates).
    """

    steps: tuple[Step, ...] = ()
    resend_reversed: bool = True
    resend_rotation: int = 0


def schedules(
    replicas: int = len(DEFAULT_REPLICAS), max_steps: int = 40
) -> st.SearchStrategy[Schedule]:
    """Random adversarial schedules for ``replicas`` replicas."""
    index = st.integers(0, replicas - 1)
    step: st.SearchStrategy[Step] = st.one_of(
        st.just(Mutate()),
        st.builds(Deliver, st.integers(0, 1_000), index),
        st.builds(Sync, index, index),
    )
    return st.builds(
        Schedule,
        st.lists(step, max_size=max_steps).map(tuple),
        st.booleans(),
        st.integers(0, 1_000),
    )


# -- running -----------------------------------------------------------------------


class ConvergenceFailure(AssertionError):
    """A convergence check failed; the message says which check and where."""


def _default_transport(state: S) -> S:
    if isinstance(state, _MEMMESH_TYPES):
        return decode(encode(state))  # type: ignore[return-value]
    return state.copy()


class _Run(Generic[S]):
    """Replicas, the deltas produced so far, and the checks made while running."""

    def __init__(
        self,
        empty: Callable[[], S],
        operations: Sequence[Operation[S]],
        replicas: Sequence[str],
        transport: Callable[[S], S],
    ) -> None:
        if not replicas:
            raise ValueError("at least one replica is needed")
        self.empty = empty
        self.pending = list(operations)
        self.pending.reverse()
        self.replicas = tuple(replicas)
        self.transport = transport
        self.states = [empty() for _ in self.replicas]
        self.deltas: list[S] = []
        self.log: list[str] = []

    def fail(self, message: str) -> ConvergenceFailure:
        trail = "; ".join(self.log[-8:])
        return ConvergenceFailure(f"{message} (last steps: {trail})")

    def mutate(self) -> None:
        op = self.pending.pop()
        at = op.replica % len(self.replicas)
        state = self.states[at]
        before = state.copy()
        delta = op.mutate(state, self.replicas[at])
        self.log.append(f"{op.name}{op.args!r}@{at}")
        if join(before, delta) != state:
            raise self.fail(f"delta law broken by {op.name}{op.args!r} at replica {at}")
        self.deltas.append(self.transport(delta))

    def deliver(self, number: int, to: int) -> None:
        if not self.deltas:
            return
        number %= len(self.deltas)
        to %= len(self.replicas)
        self.log.append(f"deliver #{number}->{to}")
        self.states[to].merge(self.transport(self.deltas[number]))

    def sync(self, source: int, target: int) -> None:
        source %= len(self.replicas)
        target %= len(self.replicas)
        self.log.append(f"sync {source}->{target}")
        self.states[target].merge(self.transport(self.states[source]))

    def run_steps(self, schedule: Schedule) -> None:
        for step in schedule.steps:
            if isinstance(step, Mutate):
                if self.pending:
                    self.mutate()
            elif isinstance(step, Deliver):
                self.deliver(step.delta, step.to)
            else:
                self.sync(step.source, step.target)
        while self.pending:
            self.mutate()

    def resend_all(self, schedule: Schedule) -> None:
        count = len(self.deltas)
        order = list(range(count))
        if count:
            rotation = schedule.resend_rotation % count
            order = order[rotation:] + order[:rotation]
        if schedule.resend_reversed:
            order.reverse()
        for to in range(len(self.replicas)):
            for number in order:
                self.deliver(number, to)


def check_convergence(
    empty: Callable[[], S],
    operations: Sequence[Operation[S]],
    schedule: Schedule | None = None,
    *,
    replicas: Sequence[str] = DEFAULT_REPLICAS,
    transport: Callable[[S], S] | None = None,
) -> S:
    """Run ``operations`` on ``replicas`` under ``schedule`` and check convergence.

    It checks, for any state type with ``copy()``, in-place ``merge()`` and ``==``:

    1. the delta law at every mutation: ``state_before ⊔ delta == state_after``;
    2. after every delta was (re)delivered everywhere, all replicas are equal, and equal
       to the join of all deltas (so no delivery order changed the outcome);
    3. for memmesh types, every delta went through ``encode``/``decode`` on the way and
       the replicas' encodings are byte-identical.

    ``empty`` makes the empty state (the type itself will do: ``ORSet``).
    ``transport`` carries each delta and synced state between replicas; by default
    memmesh types travel through ``encode``/``decode`` and other types are copied.
    Returns the converged state; raises :class:`ConvergenceFailure` otherwise.
    """
    schedule = Schedule() if schedule is None else schedule
    run = _Run(empty, operations, replicas, _default_transport if transport is None else transport)
    run.run_steps(schedule)
    run.resend_all(schedule)
    reference = empty()
    for delta in run.deltas:
        reference.merge(delta)
    first = run.states[0]
    for at, state in enumerate(run.states):
        if state != first:
            raise run.fail(f"replica {at} differs from replica 0: {state!r} != {first!r}")
        if isinstance(state, _MEMMESH_TYPES) and encode(state) != encode(first):  # type: ignore[arg-type]
            raise run.fail(f"replica {at} encodes differently from replica 0")
    if first != reference:
        raise run.fail(f"replicas differ from the join of all deltas: {first!r} != {reference!r}")
    return first


@st.composite
def states(
    draw: st.DrawFn,
    kind: type[Any],
    *,
    max_operations: int = 12,
    elements: st.SearchStrategy[Any] | None = None,
    values: st.SearchStrategy[Any] | None = None,
) -> Any:
    """Reachable states of ``kind``: one replica's state after random operations and a
    random partial delivery schedule (so contexts carry clouds)."""
    ops = draw(
        st.lists(operations(kind, elements=elements, values=values), max_size=max_operations)
    )
    schedule = draw(schedules())
    run: _Run[Any] = _Run(kind, ops, DEFAULT_REPLICAS, lambda s: s.copy())
    run.run_steps(schedule)
    return run.states[draw(st.integers(0, len(DEFAULT_REPLICAS) - 1))]


# -- the memory key state ----------------------------------------------------------

_KEY = "k-0001"
_SCOPES = st.sampled_from((None, "x", "y"))
_WALLS = st.integers(1_000, 1_003)
_LOGICALS = st.integers(0, 2)
_METADATA: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    ({}, {"k": 1}, {"k": 2}, {"a": (1, "x")}, {"k": 1.5}))
_KEY_ELEMENTS = (None, "a", "b", b"a", 0, 7, ("t", 2))


@st.composite
def _key_version(draw: st.DrawFn, policy: str, ctx: dict[str, int]) -> VersionData:
    ops = [OP_ADD, OP_UPDATE, OP_RESOLVE] + ([OP_DELETE] if policy == "lww" else [])
    op = draw(st.sampled_from(ops))
    text = None if op == OP_DELETE else draw(st.sampled_from(("one", "two", "three")))
    resolver: str | None = None
    inputs: tuple[tuple[str, int], ...] = ()
    if op == OP_RESOLVE:
        resolver = draw(st.sampled_from(("lww", "llm")))
        seen = [(r, c) for r, n in sorted(ctx.items()) for c in range(1, n + 1)]
        inputs = tuple(sorted(draw(st.sets(st.sampled_from(seen), max_size=2))))
    return VersionData(text, draw(st.sampled_from((None, "alice", "bob"))),
                       draw(st.sampled_from((None, "planner"))), draw(_WALLS), draw(_LOGICALS),
                       draw(st.sampled_from((1.0, 0.5, 0.0))), draw(_METADATA), op, resolver,
                       inputs, draw(st.sampled_from((None, None, 0.25, 1.0))))


_KEEPS = st.sampled_from((1, 2, 3, DEFAULT_KEEP))


@st.composite
def _key_event(draw: st.DrawFn, policy: str, ctx: dict[str, int], forgotten: bool
               ) -> EventData:
    """One event of a memory's timeline whose context is within ``ctx``."""
    seen = {r: draw(st.integers(0, n)) for r, n in sorted(ctx.items())}
    pairs = {r: n for r, n in seen.items() if n}
    if not forgotten and draw(st.booleans()):
        return version_event(draw(_key_version(policy, ctx)), pairs,
                             draw(st.sampled_from(({}, {"why": "x"}))))
    ops = [OP_FORGET] if forgotten else [OP_NOOP] + ([OP_DELETE] if policy == "mv" else [])
    return EventData(draw(st.sampled_from(ops)), draw(st.sampled_from((None, "alice"))),
                     draw(st.sampled_from((None, "lead"))), draw(_WALLS), draw(_LOGICALS),
                     tuple(sorted(pairs.items())), draw(st.sampled_from(({}, {"why": "y"}))))


def _compacted(state: KeyState) -> KeyState:
    state.events = compact(state.events, state.keep, state.protected())
    return state


@st.composite
def key_states(draw: st.DrawFn, policy: str | None = None, *, key: str = _KEY,
               replicas: Sequence[str] = DEFAULT_REPLICAS) -> KeyState:
    """Well-formed states of one key (:mod:`memmesh.crdt.keystate`) of every shape: "mv",
    "lww" or a set, forgotten or not, RESOLVE versions with inputs, several origins.
    Well-formed means what storage's codec accepts from a peer: every dot of the body
    covered by the context, at most one "lww" version, DELETE only under "lww"."""
    policy = policy or draw(st.sampled_from(("mv", "lww", "set")))
    kind = KIND_SET if policy == "set" else KIND_MEMORY
    ctx = draw(st.dictionaries(st.sampled_from(replicas), st.integers(1, 4), min_size=1))
    created = None if kind == KIND_SET else Timestamp(draw(_WALLS), draw(_LOGICALS),
                                                      draw(st.sampled_from(replicas)))
    header = Header(key, kind, draw(_SCOPES), draw(_SCOPES), draw(_SCOPES), None, policy,
                    "shared", draw(st.booleans()), created,
                    draw(st.sampled_from((None, 10**13))))
    forgotten = draw(st.booleans()) and draw(st.booleans())
    all_dots = [Dot(r, c) for r, n in sorted(ctx.items()) for c in range(1, n + 1)]
    body: dict[Any, Any] = {}
    if not forgotten and kind == KIND_SET:
        for element in draw(st.sets(st.sampled_from(_KEY_ELEMENTS), max_size=3)):
            body[element] = frozenset(draw(st.sets(st.sampled_from(all_dots), min_size=1,
                                                   max_size=2)))
    elif not forgotten:
        chosen = draw(st.sets(st.sampled_from(all_dots), max_size=1 if policy == "lww" else 3))
        for dot in sorted(chosen):
            body[dot] = draw(_key_version(policy, ctx))
    events: dict[Dot, EventData] = {}
    keep = DEFAULT_KEEP
    if kind == KIND_MEMORY:
        keep = draw(_KEEPS)
        for dot in sorted(draw(st.sets(st.sampled_from(all_dots), max_size=5))):
            events[dot] = draw(_key_event(policy, ctx, forgotten))
    return _compacted(KeyState(header, ctx, forgotten, body, events, keep))


def _with(state: KeyState, *, header: Header | None = None, ctx: dict[str, int] | None = None,
          forgotten: bool | None = None, body: dict[Any, Any] | None = None,
          events: dict[Dot, EventData] | None = None) -> KeyState:
    forgotten = state.forgotten if forgotten is None else forgotten
    if events is None:
        events = state.events if forgotten == state.forgotten else {}
    return KeyState(state.header if header is None else header,
                    dict(state.ctx) if ctx is None else ctx, forgotten,
                    dict(state.body) if body is None else body, dict(events), state.keep)


def _floor(state: KeyState, replica: str) -> int:
    """The highest counter of ``replica`` among the dots of ``state``'s body."""
    found = [d.counter for d in state.body if isinstance(d, Dot) and d.replica == replica]
    if state.header.kind == KIND_SET:
        found = [d.counter for ds in state.body.values() for d in ds if d.replica == replica]
    for dot, event in state.events.items():  # the events' dots and contexts too
        found += [dot.counter] if dot.replica == replica else []
        found += [c for r, c in event.ctx if r == replica]
    return max(found, default=1)


@st.composite
def key_state_variants(draw: st.DrawFn, base: KeyState,
                       replicas: Sequence[str] = DEFAULT_REPLICAS) -> KeyState:
    """``base`` changed in exactly one field: one header field, one context entry, one
    field of one version, the forgotten flag, one set element or its dots. Each is a
    well-formed state a faulty peer could ship for the same key; joins of any of them
    must still be a total, deterministic function of the inputs."""
    h = base.header
    origin = draw(st.sampled_from(replicas))
    mutations: list[Callable[[], KeyState]] = [
        lambda: _with(base, header=h._replace(app_id=draw(_SCOPES))),
        lambda: _with(base, header=h._replace(user_id=draw(_SCOPES))),
        lambda: _with(base, header=h._replace(agent_id=draw(_SCOPES))),
        lambda: _with(base, header=h._replace(run_id=draw(st.sampled_from((None, "run"))))),
        lambda: _with(base, header=h._replace(priority=not h.priority)),
        lambda: _with(base, header=h._replace(
            expires_at=draw(st.sampled_from((None, 10**13, 10**13 + 1))))),
        lambda: _with(base, ctx={**base.ctx, origin: draw(
            st.integers(_floor(base, origin), 6))}),
        lambda: _with(base, forgotten=True, body={}),
    ]
    c = h.created
    if c is not None:
        mutations += [
            lambda: _with(base, header=h._replace(created=Timestamp(
                c.wall_ms, c.logical, draw(st.sampled_from(replicas))))),
            lambda: _with(base, header=h._replace(created=Timestamp(
                draw(_WALLS), c.logical, c.replica))),
            lambda: _with(base, header=h._replace(created=Timestamp(
                c.wall_ms, draw(_LOGICALS), c.replica))),
        ]
        if len(base.body) <= 1 and not any(v.op == OP_DELETE for v in base.body.values()) \
                and not any(e.op == OP_DELETE for e in base.events.values()):
            other = "lww" if h.policy == "mv" else "mv"
            mutations.append(lambda: _compacted(_with(base, header=h._replace(policy=other))))
    if base.body and h.kind == KIND_MEMORY:
        first = sorted(base.body)[0]
        version: VersionData = base.body[first]

        def changed(**fields: Any) -> KeyState:
            return _with(base, body={**base.body, first: version._replace(**fields)})

        mutations += [
            lambda: changed(text=None if version.op == OP_DELETE else
                            draw(st.sampled_from(("one", "four")))),
            lambda: changed(actor=draw(st.sampled_from((None, "carol")))),
            lambda: changed(role=draw(st.sampled_from((None, "critic")))),
            lambda: changed(wall_ms=draw(_WALLS)),
            lambda: changed(logical=draw(_LOGICALS)),
            lambda: changed(confidence=draw(st.sampled_from((0.25, 1.0)))),
            lambda: changed(metadata=draw(_METADATA)),
            lambda: _with(base, body={d: v for d, v in base.body.items() if d != first}),
        ]
        if version.op in (OP_ADD, OP_UPDATE):
            mutations.append(lambda: changed(op=OP_UPDATE if version.op == OP_ADD else OP_ADD))
        if version.op == OP_RESOLVE:
            mutations += [
                lambda: changed(resolver=draw(st.sampled_from(("vote", "lww")))),
                lambda: changed(inputs=()),
            ]
    if h.kind == KIND_MEMORY:
        all_dots = [Dot(r, c) for r, n in sorted(base.ctx.items()) for c in range(1, n + 1)]
        at = draw(st.sampled_from(all_dots))
        mutations += [
            lambda: _compacted(_with(base, events={
                **base.events, at: draw(_key_event(h.policy, base.ctx, base.forgotten))})),
            lambda: _compacted(KeyState(base.header, dict(base.ctx), base.forgotten,
                                        dict(base.body), dict(base.events), draw(_KEEPS))),
        ]
        if base.events:
            first_event = sorted(base.events)[0]
            mutations.append(lambda: _with(base, events={
                d: e for d, e in base.events.items() if d != first_event}))
    if h.kind == KIND_SET and not base.forgotten:
        all_dots = [Dot(r, c) for r, n in sorted(base.ctx.items()) for c in range(1, n + 1)]
        element = draw(st.sampled_from(_KEY_ELEMENTS))
        added = frozenset(draw(st.sets(st.sampled_from(all_dots), min_size=1, max_size=2)))
        mutations += [
            lambda: _with(base, body={**base.body, element: added}),
            lambda: _with(base, body={e: d for e, d in base.body.items() if e != element}),
        ]
    return draw(st.sampled_from(mutations))()

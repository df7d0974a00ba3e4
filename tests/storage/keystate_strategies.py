"""Hypothesis strategies for key states of one memory key, honest and adversarial.

``key_states()`` draws a valid state of every shape (mv, lww, set; forgotten or not;
RESOLVE versions with inputs; several replicas). ``variants(base)`` derives states
that differ from ``base`` in exactly one field: one header field, one context entry,
one field of one version, the forgotten flag, one set element or its dots. Each
variant is a state a faulty (or buggy) peer could ship for the same key; joins of any
of them must still be a total, deterministic function of the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from memmesh.crdt import DecodeError, Dot, Timestamp
from memmesh.storage.keystate import KIND_MEMORY, KIND_SET, Header, KeyState, decode, encode

KEY = "k-0001"
REPLICAS = ("ra", "rb", "rc")
ELEMENTS = (None, "a", "b", b"a", 0, 7, ("t", 2))
ADD, UPDATE, RESOLVE, DELETE = 0, 1, 2, 3

_scope = st.sampled_from((None, "x", "y"))
_wall = st.integers(1_000, 1_003)
_logical = st.integers(0, 2)
_metadata = st.sampled_from(({}, {"k": 1}, {"k": 2}, {"a": (1, "x")}, {"k": 1.5}))


def valid(state: KeyState) -> bool:
    """Whether ``state`` survives the canonical round trip (what a peer can ship)."""
    try:
        return encode(decode(encode(state))) == encode(state)
    except DecodeError:
        return False


@st.composite
def _version(draw: st.DrawFn, policy: str, ctx: dict[str, int]) -> tuple[Any, ...]:
    ops = [ADD, UPDATE, RESOLVE] + ([DELETE] if policy == "lww" else [])
    op = draw(st.sampled_from(ops))
    text = None if op == DELETE else draw(st.sampled_from(("one", "two", "three")))
    resolver, inputs = None, ()
    if op == RESOLVE:
        resolver = draw(st.sampled_from(("lww", "llm")))
        seen = [(r, c) for r, n in sorted(ctx.items()) for c in range(1, n + 1)]
        inputs = tuple(sorted(draw(st.sets(st.sampled_from(seen), max_size=2)))) if seen else ()
    return (text, draw(st.sampled_from((None, "alice", "bob"))),
            draw(st.sampled_from((None, "planner"))), draw(_wall), draw(_logical),
            draw(st.sampled_from((1.0, 0.5, 0.0))), draw(_metadata), op, resolver, inputs)


@st.composite
def key_states(draw: st.DrawFn, policy: str | None = None) -> KeyState:
    """A valid state of key ``KEY`` (see module doc)."""
    policy = policy or draw(st.sampled_from(("mv", "lww", "set")))
    kind = KIND_SET if policy == "set" else KIND_MEMORY
    ctx = draw(st.dictionaries(st.sampled_from(REPLICAS), st.integers(1, 4), min_size=1))
    created = None if kind == KIND_SET else Timestamp(draw(_wall), draw(_logical),
                                                      draw(st.sampled_from(REPLICAS)))
    header = Header(KEY, kind, draw(_scope), draw(_scope), draw(_scope), None, policy,
                    "shared", draw(st.booleans()), created,
                    draw(st.sampled_from((None, 10**13))))
    forgotten = draw(st.booleans()) and draw(st.booleans())
    all_dots = [Dot(r, c) for r, n in sorted(ctx.items()) for c in range(1, n + 1)]
    body: dict[Any, Any] = {}
    if not forgotten and kind == KIND_SET:
        for element in draw(st.sets(st.sampled_from(ELEMENTS), max_size=3)):
            body[element] = frozenset(draw(st.sets(st.sampled_from(all_dots), min_size=1,
                                                   max_size=2)))
    elif not forgotten:
        chosen = draw(st.sets(st.sampled_from(all_dots), max_size=1 if policy == "lww" else 3))
        for dot in sorted(chosen):
            body[dot] = draw(_version(policy, ctx))
    return KeyState(header, ctx, forgotten, body)


def _header(state: KeyState, **changes: Any) -> KeyState:
    return KeyState(state.header._replace(**changes), dict(state.ctx), state.forgotten,
                    dict(state.body))


def _version_field(state: KeyState, index: int, value: Any) -> KeyState:
    """``state`` with field ``index`` of its first version replaced."""
    body = dict(state.body)
    dot = sorted(body)[0]
    version = list(body[dot])
    version[index] = value
    body[dot] = tuple(version)
    return KeyState(state.header, dict(state.ctx), state.forgotten, body)


@st.composite
def variants(draw: st.DrawFn, base: KeyState) -> KeyState:
    """``base`` changed in one field (see module doc); always a valid state."""
    h = base.header
    mutations: list[Callable[[], KeyState]] = [
        lambda: _header(base, app_id=draw(_scope)),
        lambda: _header(base, user_id=draw(_scope)),
        lambda: _header(base, agent_id=draw(_scope)),
        lambda: _header(base, run_id=draw(st.sampled_from((None, "run")))),
        lambda: _header(base, priority=not h.priority),
        lambda: _header(base, expires_at=draw(st.sampled_from((None, 10**13, 10**13 + 1)))),
        lambda: KeyState(h, {**base.ctx, draw(st.sampled_from(REPLICAS)):
                             draw(st.integers(1, 6))}, base.forgotten, dict(base.body)),
        lambda: KeyState(h, dict(base.ctx), True, {}),
    ]
    if h.created is not None:
        c = h.created
        mutations += [
            lambda: _header(base, created=Timestamp(c.wall_ms, c.logical,
                                                    draw(st.sampled_from(REPLICAS)))),
            lambda: _header(base, created=Timestamp(draw(_wall), c.logical, c.replica)),
            lambda: _header(base, created=Timestamp(c.wall_ms, draw(_logical), c.replica)),
        ]
        if len(base.body) <= 1:
            other = "lww" if h.policy == "mv" else "mv"
            if not any(v[7] == DELETE for v in base.body.values()):
                mutations.append(lambda: _header(base, policy=other))
    if base.body and h.kind == KIND_MEMORY:
        version = base.body[sorted(base.body)[0]]
        mutations += [
            lambda: _version_field(base, 0, draw(st.sampled_from(("one", "four")))
                                   if version[7] != DELETE else None),
            lambda: _version_field(base, 1, draw(st.sampled_from((None, "carol")))),
            lambda: _version_field(base, 2, draw(st.sampled_from((None, "critic")))),
            lambda: _version_field(base, 3, draw(_wall)),
            lambda: _version_field(base, 4, draw(_logical)),
            lambda: _version_field(base, 5, draw(st.sampled_from((0.25, 1.0)))),
            lambda: _version_field(base, 6, draw(_metadata)),
        ]
        if version[7] in (ADD, UPDATE):
            mutations.append(lambda: _version_field(base, 7, UPDATE if version[7] == ADD
                                                    else ADD))
        if version[7] == RESOLVE:
            mutations += [
                lambda: _version_field(base, 8, draw(st.sampled_from(("vote", "lww")))),
                lambda: _version_field(base, 9, ()),
            ]
        mutations.append(lambda: KeyState(h, dict(base.ctx), False,
                                          {d: v for d, v in base.body.items()
                                           if d != sorted(base.body)[0]}))
    if h.kind == KIND_SET and not base.forgotten:
        all_dots = [Dot(r, c) for r, n in sorted(base.ctx.items()) for c in range(1, n + 1)]
        element = draw(st.sampled_from(ELEMENTS))
        dots = frozenset(draw(st.sets(st.sampled_from(all_dots), min_size=1, max_size=2)))
        mutations += [
            lambda: KeyState(h, dict(base.ctx), False, {**base.body, element: dots}),
            lambda: KeyState(h, dict(base.ctx), False,
                             {e: d for e, d in base.body.items() if e != element}),
        ]
    return draw(st.sampled_from(mutations))()

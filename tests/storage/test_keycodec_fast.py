"""The key-state codec's single-writer paths (issue 17, hot paths) are the general
layout, built and checked in one pass: same bytes out, same states in, and nothing
accepted that the general walk refuses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memmesh.crdt import DecodeError, Dot, Timestamp, unpackb
from memmesh.crdt import keystate as ks
from memmesh.crdt.keystate import KIND_MEMORY, Header, KeyState, VersionData
from memmesh.crdt.testing import key_states
from memmesh.storage import _keycodec as codec

_ORIGINS = st.sampled_from(("a#x1", "b" * 128, "r"))
_TEXTS = st.sampled_from(("one", "", "é", "t" * 40))
_OPT = st.sampled_from((None, "alice", "x" * 256))


@st.composite
def single_writer_states(draw: st.DrawFn) -> KeyState:
    """A memory one origin wrote (what an add makes, and most of what sync ships),
    created and then perhaps updated, deleted or weighted by the same origin."""
    origin = draw(_ORIGINS)
    policy = draw(st.sampled_from(("mv", "lww")))
    wall = draw(st.integers(0, 2**41))
    created = Timestamp(wall, draw(st.integers(0, 3)), origin)
    header = Header(draw(st.sampled_from(("k", "m" * 256))), KIND_MEMORY, draw(_OPT),
                    draw(_OPT), draw(_OPT), draw(_OPT), policy, "shared",
                    draw(st.booleans()), created, draw(st.sampled_from((None, 0, 2**40))))
    counter = draw(st.integers(1, 2**40))

    def version(op: int) -> VersionData:
        return VersionData(None if op == ks.OP_DELETE else draw(_TEXTS), draw(_OPT),
                           draw(_OPT), wall, draw(st.integers(0, 2)),
                           draw(st.sampled_from((1.0, 0.25))),
                           draw(st.sampled_from(({}, {"k": 1}, {"a": (1, "x")}))), op,
                           importance=draw(st.sampled_from((None, None, 0.5))))

    state = ks.create(header, Dot(origin, counter), version(ks.OP_ADD),
                      keep=draw(st.sampled_from((0, 1, 32, 33))),
                      detail=draw(st.sampled_from((None, {"why": "x"}))))
    for step in range(draw(st.integers(0, 2))):
        op = ks.OP_DELETE if policy == "lww" and draw(st.booleans()) else ks.OP_UPDATE
        state = ks.write(state, Dot(origin, counter + step + 1), version(op))
    return state


_HOSTILE: tuple[Any, ...] = (None, True, False, 0, 1, 2, -1, 2**32, 2**63, 1.0, -0.0, "",
                             "x\x00", "s" * 300, b"b", (), (0, 1), {}, {"k": 1})


def _paths(plain: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every position in ``plain``: each node of the nested tuples, leaves included."""
    out = [path]
    if type(plain) is tuple:
        for i, item in enumerate(plain):
            out.extend(_paths(item, (*path, i)))
    return out


def _mutate(plain: Any, path: tuple[int, ...], value: Any) -> Any:
    """``plain`` with the node at ``path`` replaced by ``value``."""
    if not path:
        return value
    i = path[0]
    return (*plain[:i], _mutate(plain[i], path[1:], value), *plain[i + 1:])


def _agree(plain: Any) -> None:
    fast = codec._single_writer(plain)
    try:
        general = codec._general(plain)
    except (DecodeError, TypeError, ValueError):
        assert fast is None, plain
        return
    assert fast is None or fast == general, plain


def _states() -> st.SearchStrategy[KeyState]:
    return st.one_of(single_writer_states(), key_states())


@given(_states())
def test_encode_is_the_general_layout_for_every_state(state: KeyState) -> None:
    assert codec.encode(state) == codec._encode_general(state)


@given(_states())
def test_single_writer_decode_accepts_exactly_what_the_general_walk_accepts(
        state: KeyState) -> None:
    """Every node of the state's plain form replaced by every hostile value: the
    single-writer path accepts only what the general walk accepts, as the same state."""
    plain = unpackb(codec.encode(state))
    _agree(plain)
    for path in _paths(plain):
        for value in _HOSTILE:
            _agree(_mutate(plain, path, value))


@given(single_writer_states())
def test_what_one_origin_wrote_takes_the_single_writer_path(state: KeyState) -> None:
    plain = unpackb(codec.encode(state))
    (dot, version), = state.body.items()
    own_event = state.events.keys() == {dot} and state.events[dot].version == version
    if version.importance is None and (own_event or (not state.events
                                                     and state.keep == ks.DEFAULT_KEEP)):
        fast = codec._single_writer(plain)
        assert fast is not None and fast == codec.decode(codec.encode(state))


def test_an_empty_array_is_refused_as_a_key_state_not_a_crash() -> None:
    with pytest.raises(DecodeError, match="expected"):
        codec.decode(b"\x90")  # msgpack's empty array

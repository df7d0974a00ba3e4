"""What decode accepts, the join, the encoder and the store accept too (issue 11, cases 3
and 7): nothing a peer ships can fail inside the write transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_once, ticking

from memmesh.crdt import DecodeError, Dot, InvalidArgumentError, packb, unpackb
from memmesh.crdt.keystate import KeyState, join
from memmesh.crdt.testing import key_state_variants, key_states
from memmesh.storage import Replica
from memmesh.storage._indexes import MAX_INDEX_KEY, add_index_rows, unstorable
from memmesh.storage._keycodec import decode, encode
from memmesh.storage._keystore import load


def _payload(sender: Replica, states: list[bytes]) -> bytes:
    """A changes payload from ``sender`` carrying ``states`` and no claims."""
    plain = dict(unpackb(sender.sync_changes(sender.sync_summary())))  # type: ignore[arg-type]
    return packb(dict(plain, states=tuple(states), through={}))


def _state(replica: Replica, key: str) -> KeyState:
    with replica._env.read() as txn:
        _, _, state = load(txn, key)
    assert state is not None
    return state


@pytest.mark.parametrize("element", [True, False, 1.5, (1, True)])
def test_set_elements_are_checked_at_decode_with_the_orset_rule(tmp_path: Path,
                                                                element: Any) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        a.set_add("tags", "x")
        state = _state(a, "tags")
    dot = next(iter(state.body["x"]))
    plain = list(unpackb(encode(state)))  # type: ignore[arg-type]
    plain[5] = ((element, (0, dot.counter)),)
    with pytest.raises(DecodeError, match="set elements"):
        decode(packb(tuple(plain)))


def test_metadata_map_keys_must_be_str(tmp_path: Path) -> None:
    import msgpack

    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        mid = a.add("text", metadata={"k": 1})
        raw = encode(_state(a, mid))
    forged = raw.replace(msgpack.packb("k"), msgpack.packb(b"k"))
    assert forged != raw
    with pytest.raises(DecodeError, match="metadata map keys"):
        decode(forged)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def test_metadata_nested_as_deep_as_add_allows_still_joins(tmp_path: Path) -> None:
    """The join used to re-validate values with a depth rule one level stricter than
    decode's: the second receipt of such a state failed inside the transaction."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        deepest = next(d for d in range(40, 0, -1) if _accepts(a, _nested(d)))
        mid = a.add("deep", metadata=_nested(deepest), policy="lww")
        sync_once(a, b)
        a.update(mid, "deep, updated")
        b.update(mid, "concurrent")
        sync_once(a, b)
        sync_once(b, a)
        assert a.state_digest() == b.state_digest()


def _accepts(replica: Replica, metadata: dict[str, Any]) -> bool:
    try:
        replica.add("probe", metadata=metadata, tier="private")
    except InvalidArgumentError:
        return False
    return True


@settings(max_examples=300)
@given(st.data())
def test_the_key_state_strategies_draw_only_states_decode_accepts(data: st.DataObject) -> None:
    """The crdt tests draw their states from these strategies: each one must be a state
    a peer could ship (canonical bytes that decode to an equal state)."""
    base = data.draw(key_states())
    for state in (base, data.draw(key_state_variants(base))):
        raw = encode(state)
        assert encode(decode(raw)) == raw
        assert decode(raw) == state


@settings(max_examples=150)
@given(key_states(), key_states())
def test_whatever_decode_accepts_joins_and_encodes(a: KeyState, b: KeyState) -> None:
    joined = join(decode(encode(a)), decode(encode(b)))
    assert decode(encode(joined)) is not None


def _longest_index_key(state: KeyState) -> int:
    rows: dict[str, list[tuple[bytes, bytes]]] = {
        "scope": [], "expiry": [], "conflict": [], "origin": []}
    add_index_rows(state.header.key, state, rows)
    kb = state.header.key.encode()
    return max([len(kb) + 9] + [len(k) for entries in rows.values() for k, _ in entries])


@settings(max_examples=200)
@given(key_states(), st.integers(0, 300), st.integers(0, 300), st.booleans())
def test_unstorable_says_exactly_when_an_index_key_would_exceed_lmdb_s_limit(
        state: KeyState, key_len: int, user_len: int, wide: bool) -> None:
    char = "é" if wide else "k"
    header = state.header._replace(key="m" + char * key_len,
                                   user_id=("u" + char * user_len) if user_len else None)
    state = KeyState(header, state.ctx, state.forgotten, state.body)
    assert (unstorable(state) is None) == (_longest_index_key(state) <= MAX_INDEX_KEY)


def test_a_local_write_too_long_for_the_index_is_a_typed_error(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", id_factory=lambda: "m" * 256) as a:
        with pytest.raises(InvalidArgumentError, match="LMDB"):
            a.add("text", user_id="u" * 256)
        assert a.stats()["keys"] == 0


def test_lmdb_key_limit_is_what_indexes_assume(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as a:
        assert a._env._env.max_key_size() == MAX_INDEX_KEY


def test_a_key_reusing_another_key_s_dot_does_not_hide_it_from_sync(tmp_path: Path) -> None:
    """Case 3 of issue 11: the origin index mapped (origin, counter) to one key, so a
    state for a new key carrying the same dot overwrote the first key's entry."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b, \
            Replica.open(tmp_path / "c", replica_id="rc", clock=clock) as c:
        real = a.add("the real memory")
        state = _state(a, real)
        dot = Dot(str(a.origin), 1)
        assert state.ctx == {dot.replica: 1}
        forged = KeyState(state.header._replace(key="forged-key"), dict(state.ctx), False,
                          {dot: state.body[dot]._replace(text="a forgery")})
        sync_once(a, b)
        for target in (a, b):  # the author itself, and a relay
            target.sync_apply(_payload(target, [encode(forged)]))
        for source in (a, b):
            with Replica.open(tmp_path / f"c-{source.replica_id}", clock=clock) as fresh:
                fresh.sync_apply(source.sync_changes(fresh.sync_summary()))
                got = fresh.get(real)
                assert got is not None and got.text == "the real memory"
                assert fresh.get("forged-key") is not None
        c.sync_apply(b.sync_changes(c.sync_summary()))
        assert c.state_digest() == b.state_digest() == a.state_digest()

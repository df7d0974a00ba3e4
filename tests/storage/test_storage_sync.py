"""Sync primitives: what is shipped, what never is, and what bad input does (nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_once, sync_pair, ticking

from memmesh.crdt import ClockDriftError, DecodeError, MemmeshError, packb, unpackb
from memmesh.storage import PeerScope, Replica


@pytest.fixture
def trio_(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = ticking()
    rs = [Replica.open(tmp_path / n, replica_id=n, clock=clock) for n in ("ra", "rb", "rc")]
    yield rs
    for r in rs:
        r.close()


def test_private_and_run_scoped_memories_never_leave_the_replica(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    private = a.add("CANARY-private-tier", tier="private", user_id="u")
    run_scoped = a.add("CANARY-run-scoped", run_id="run-1", user_id="u")
    shared_run = a.add("shared run memory", run_id="run-1", tier="shared", user_id="u")
    a.set_add("CANARY-private-set", "x", run_id="run-1")
    a.update(private, "CANARY-private-updated")
    payloads = sync_once(a, b, max_bytes=300)
    payloads.append(a.sync_changes(b.sync_summary(digest=True)))
    payloads.append(a.sync_changes(Replica.sync_summary(b)))
    asked = [private, run_scoped, "CANARY-private-set", shared_run]
    payloads.append(a.sync_changes(b.sync_summary(want=asked, digest=True)))
    for payload in payloads:
        assert b"CANARY" not in payload
        assert private.encode() not in payload and run_scoped.encode() not in payload
    assert b.get(shared_run) is not None and b.get(private) is None
    assert a.get(run_scoped).tier == "private"  # type: ignore[union-attr]
    # private keys do not count in the digest: the replicas agree on the shared state
    assert a.state_digest() == b.state_digest()


def test_peer_scope_filter_withholds_keys_and_even_their_ids(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    hidden = a.add("CANARY-other-app", app_id="secret-app", user_id="u1")
    hidden_user = a.add("CANARY-other-user", app_id="app", user_id="u2")
    visible = a.add("visible", app_id="app", user_id="u1")
    scope = PeerScope(apps=frozenset({"app"}), users=frozenset({"u1"}))
    payloads = sync_once(a, b, max_bytes=250, peer=scope)
    payloads.append(a.sync_changes(b.sync_summary(digest=True, digest_scope=scope), peer=scope))
    payloads.append(a.sync_changes(b.sync_summary(digest=True), peer=scope))
    payloads.append(a.sync_changes(b.sync_summary(want=[hidden, hidden_user]), peer=scope))
    for payload in payloads:
        assert b"CANARY" not in payload
        assert hidden.encode() not in payload and hidden_user.encode() not in payload
    assert b.get(visible) is not None and b.get(hidden) is None
    # the watermark still advanced past the withheld keys: nothing more to ship
    again = unpackb(a.sync_changes(b.sync_summary(), peer=scope))
    assert again["states"] == ()  # type: ignore[index]


def test_every_payload_respects_max_bytes(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    ids = [a.add(f"memory number {i} " + "x" * (i % 50), user_id="u") for i in range(60)]
    for i in ids[::3]:
        a.update(i, "updated " + i)
    payloads = sync_once(a, b, max_bytes=600)
    assert len(payloads) > 5
    assert all(len(p) <= 600 for p in payloads)
    assert a.state_digest() == b.state_digest()


def test_only_changed_keys_are_shipped(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    ids = [a.add(f"m{i}") for i in range(200)]
    sync_once(a, b)
    a.update(ids[7], "changed")
    payload = unpackb(a.sync_changes(b.sync_summary()))
    assert len(payload["states"]) == 1  # type: ignore[index]
    b.sync_apply(packb(payload))
    assert unpackb(a.sync_changes(b.sync_summary()))["states"] == ()  # type: ignore[index]


def test_priority_keys_are_shipped_first(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    for i in range(20):
        a.add(f"ordinary {i}")
    urgent = a.add("urgent", priority=True)
    first = unpackb(a.sync_changes(b.sync_summary(), max_bytes=200))
    assert urgent.encode() in first["states"][0]  # type: ignore[index]


def test_three_replicas_converge_through_relays(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, c = trio_
    for r in trio_:
        for i in range(5):
            r.add(f"{r.replica_id}-{i}", user_id="u")
    sync_pair(a, b, max_bytes=400)
    sync_pair(b, c, max_bytes=400)
    sync_pair(a, b, max_bytes=400)
    assert a.state_digest() == b.state_digest() == c.state_digest()
    assert len(a.list(user_id="u")) == 15


def test_digest_repair_ships_what_the_watermarks_hide(trio_) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = trio_
    a.add("in app x", app_id="x")
    missed = a.add("in app y", app_id="y")
    sync_once(a, b, peer=PeerScope(apps=frozenset({"x"})))
    assert b.get(missed) is None
    # the log path considers b up to date; the digests say otherwise
    assert unpackb(a.sync_changes(b.sync_summary()))["states"] == ()  # type: ignore[index]
    assert a.state_digest() != b.state_digest()
    listed = b.sync_apply(a.sync_changes(b.sync_summary(digest=True)))
    assert listed.wanted == (missed,)
    b.sync_apply(a.sync_changes(b.sync_summary(want=listed.wanted)))
    assert b.get(missed) is not None
    assert a.state_digest() == b.state_digest()


def test_remote_timestamps_beyond_the_drift_bound_refuse_that_key_only(tmp_path: Path) -> None:
    fast = Replica.open(tmp_path / "fast", replica_id="fast",
                        clock=ticking(1_700_000_000_000 + 3_600_000))
    slow = Replica.open(tmp_path / "slow", replica_id="slow", clock=ticking(),
                        max_drift_ms=60_000)
    slow.add("before")
    future = fast.add("from the future")
    before = slow.state_digest()
    result = slow.sync_apply(fast.sync_changes(slow.sync_summary()))
    assert [(r.key, r.reason) for r in result.refused] == [(future, "clock-ahead")]
    assert result.applied == 0 and result.through == {}  # no claim vouches for it
    assert slow.state_digest() == before and slow.journal_seq() == 1
    # not acknowledged, so it is shipped again (and refused again) until the clocks agree
    again = slow.sync_apply(fast.sync_changes(slow.sync_summary()))
    assert [r.reason for r in again.refused] == ["clock-ahead"]
    assert isinstance(ClockDriftError("x"), MemmeshError)
    fast.close()
    slow.close()


@pytest.fixture(scope="module")
def hostile_setup(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("hostile")
    clock = ticking()
    src = Replica.open(root / "src", replica_id="src", clock=clock)
    dst = Replica.open(root / "dst", replica_id="dst", clock=clock)
    m = src.add("shared base", user_id="u", metadata={"k": [1, 2]})
    sync_once(src, dst)
    src.update(m, "an update")
    src.add("second", app_id="a", policy="lww")
    src.set_add("tags", "t1")
    dst.add("local only")
    payload = src.sync_changes(dst.sync_summary())
    yield dst, payload
    src.close()
    dst.close()


def _mutate(payload: bytes, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "state"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(payload) - 1))
        return payload[:i] + bytes([payload[i] ^ data.draw(st.integers(1, 255))]) + payload[i + 1:]
    if kind == "truncate":
        return payload[:data.draw(st.integers(0, len(payload) - 1))]
    if kind == "insert":
        i = data.draw(st.integers(0, len(payload)))
        return payload[:i] + data.draw(st.binary(min_size=1, max_size=8)) + payload[i:]
    plain = dict(unpackb(payload))  # type: ignore[arg-type]
    states = list(plain["states"])
    j = data.draw(st.integers(0, len(states) - 1))
    state = states[j]
    i = data.draw(st.integers(0, len(state) - 1))
    states[j] = state[:i] + bytes([state[i] ^ data.draw(st.integers(1, 255))]) + state[i + 1:]
    plain["states"] = tuple(states)
    return packb(plain)


@settings(max_examples=300)
@given(data=st.data())
def test_hostile_payloads_raise_typed_errors_and_change_nothing(hostile_setup, data) -> None:  # type: ignore[no-untyped-def]
    dst, payload = hostile_setup
    bad = _mutate(payload, data)
    digest, seq = dst.state_digest(), dst.journal_seq()
    try:
        dst.sync_apply(bad)
    except MemmeshError:
        assert dst.state_digest() == digest and dst.journal_seq() == seq
        return
    # a mutation that still decodes to valid, canonical states is a legitimate payload;
    # undo is impossible, but the replica must still be self-consistent
    dst.state_digest()


@settings(max_examples=100)
@given(junk=st.binary(max_size=200))
def test_garbage_is_a_decode_error(hostile_setup, junk: bytes) -> None:  # type: ignore[no-untyped-def]
    dst, _ = hostile_setup
    digest = dst.state_digest()
    with pytest.raises(DecodeError):
        dst.sync_apply(junk)
    with pytest.raises(DecodeError):
        dst.sync_changes(junk)
    assert dst.state_digest() == digest


def test_structural_lies_are_refused_key_by_key(hostile_setup) -> None:  # type: ignore[no-untyped-def]
    dst, payload = hostile_setup
    plain = dict(unpackb(payload))  # type: ignore[arg-type]
    state = unpackb(plain["states"][0])
    lies = []
    # a dot beyond the key's context
    v, rids, header, ctx, forgotten, body, *timeline = state  # type: ignore[misc]
    lies.append(((v, rids, header, (0, 1), forgotten, body, *timeline), "invalid"))
    # the private tier
    lies.append(((v, rids, (*header[:7], 1, *header[8:]), ctx, forgotten, body, *timeline),
                 "private"))
    # forgotten yet carrying text
    lies.append(((v, rids, header, ctx, True, body, *timeline), "invalid"))
    # unknown replica index
    lies.append(((v, rids, header, (5, 1), forgotten, body, *timeline), "invalid"))
    # a timeline listing one event twice
    lies.append(((v, rids, header, ctx, forgotten, body, 1, timeline[1] * 2), "invalid"))
    digest = dst.state_digest()
    for lie, reason in lies:
        forged = dict(plain)
        forged["states"] = (packb(lie),)
        result = dst.sync_apply(packb(forged))
        assert [r.reason for r in result.refused] == [reason]
        assert result.refused[0].key == header[0] and result.through == {}
    duplicate = dict(plain, states=(plain["states"][0], plain["states"][0]))
    result = dst.sync_apply(packb(duplicate))
    assert [(r.key, r.reason) for r in result.refused] == [(header[0], "duplicate")]
    raw = plain["states"][0]
    assert raw[:2] == b"\x98\x02"  # format 2: the state with its timeline
    wide = b"\x98\xcc\x02" + raw[2:]  # same data, non-minimal integer encoding
    assert unpackb(wide) == unpackb(raw)
    result = dst.sync_apply(packb(dict(plain, states=(wide,))))
    assert [r.reason for r in result.refused] == ["invalid"]
    assert dst.state_digest() == digest


def _texts(replica: Replica) -> set[str]:
    return {v.text for r in replica.list() for v in r.versions}


def test_a_scoped_relay_never_vouches_for_events_it_was_not_allowed_to_hold(
        tmp_path: Path) -> None:
    """Found by the scoped-ACL fleet simulation: b may only see user u1, yet its claims
    for a's events must not let x (user u0) skip a's u0 memory."""
    def scope(user: str) -> PeerScope:
        return PeerScope(apps=frozenset({"fleet"}), users=frozenset({user}))

    with Replica.open(tmp_path / "a", replica_id="a") as a, \
            Replica.open(tmp_path / "b", replica_id="b") as b, \
            Replica.open(tmp_path / "x", replica_id="x") as x:
        a.add("fact for u0", app_id="fleet", user_id="u0")
        b.sync_apply(a.sync_changes(b.sync_summary(), peer=scope("u1")))
        x.sync_apply(b.sync_changes(x.sync_summary(), peer=scope("u0")))
        x.sync_apply(a.sync_changes(x.sync_summary(), peer=scope("u0")))
        assert _texts(x) == {"fact for u0"}
        # and an unrestricted relay of the restricted b does not skip it either
        with Replica.open(tmp_path / "y", replica_id="y") as y:
            y.sync_apply(b.sync_changes(y.sync_summary()))
            y.sync_apply(a.sync_changes(y.sync_summary()))
            assert _texts(y) == {"fact for u0"}


def test_a_claim_computed_past_a_lost_chunk_does_not_skip_that_chunk(tmp_path: Path) -> None:
    """A stream computes chunk 2 from the summary chunk 1 would have left; if chunk 1 is
    lost, chunk 2's claim must not raise the receiver's watermark over it."""
    with Replica.open(tmp_path / "a", replica_id="a") as a, \
            Replica.open(tmp_path / "b", replica_id="b") as b, \
            Replica.open(tmp_path / "ghost", replica_id="g") as ghost:
        first = a.add("first " + "x" * 200)
        a.add("second " + "y" * 200)
        chunk1 = a.sync_changes(b.sync_summary(), max_bytes=300)
        ghost.sync_apply(chunk1)  # what b would hold had chunk 1 arrived
        chunk2 = a.sync_changes(ghost.sync_summary(), max_bytes=300)
        b.sync_apply(chunk2)  # chunk 1 lost on the way
        assert a.get(first) is not None and b.get(first) is None
        b.sync_apply(a.sync_changes(b.sync_summary()))  # the next round repairs it
        assert b.state_digest() == a.state_digest()

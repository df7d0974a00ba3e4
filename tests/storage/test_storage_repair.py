"""Digest repair (issue 11, case 4; deliverable 6): replicas compare bucket digests over
the scope they share, list the keys of the differing buckets and ship what differs,
whatever the watermarks claim."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_once, ticking

from memmesh.benchmarks.bench_repair import repair_cycle
from memmesh.crdt import DecodeError, InvalidArgumentError, packb, unpackb
from memmesh.gossip.protocol import SessionConfig
from memmesh.storage import PeerScope, Replica
from memmesh.storage._digest import BUCKETS, item_hash
from memmesh.storage._keystore import load
from memmesh.storage._repair import scope_sums
from memmesh.storage._watermarks import MAX_SUMMARY_ORIGINS
from memmesh.storage.wire import MAX_WANT, MAX_WANT_BYTES, scope_plain


def repair(src: Replica, dst: Replica, *, peer: PeerScope | None = None,
           max_bytes: int | None = None) -> None:
    """The repair cycle as the sync policy drives it (the benchmark's driver)."""
    repair_cycle(src, dst, peer=peer, max_bytes=max_bytes)
    assert dst.sync_apply(src.sync_changes(dst.sync_summary(), peer=peer)).scope == peer


def _claims(sender: Replica, receiver: Replica, through: dict[str, tuple[int, int]],
            scope: PeerScope | None = None) -> bytes:
    """A payload from ``sender`` carrying only the given claims, filtered with ``scope``."""
    plain = dict(unpackb(sender.sync_changes(receiver.sync_summary())))  # type: ignore[arg-type]
    return packb(dict(plain, states=(), through=through, scope=scope_plain(scope)))


def test_a_forged_claim_with_no_states_is_found_and_repaired(tmp_path: Path) -> None:
    """Case 4: ``through = {C: 2**62}`` with no states was accepted and passed on, and C's
    writes never reached the victim again; no node compared digests."""
    clock = ticking()
    with Replica.open(tmp_path / "c", replica_id="carol", clock=clock) as carol, \
            Replica.open(tmp_path / "m", replica_id="mallory", clock=clock) as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim:
        for i in range(40):
            carol.add(f"carol's memory {i}", user_id=f"u{i % 3}")
        victim.sync_apply(_claims(mallory, victim, {str(carol.origin): (0, 2**62)}))
        sync_once(carol, victim)  # the watermark path ships nothing
        assert victim.state_digest() != carol.state_digest()
        repair(carol, victim)
        assert victim.state_digest() == carol.state_digest()
        later = carol.add("written after the repair")  # and the lie does not come back
        sync_once(carol, victim)
        assert victim.get(later) is not None


def test_repair_over_a_restricted_scope_lists_only_what_the_peer_may_see(
        tmp_path: Path) -> None:
    clock = ticking()
    scope = PeerScope(apps=frozenset({"app"}), users=frozenset({"u1", None}))
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        seen = [a.add(f"u1 fact {i}", app_id="app", user_id="u1") for i in range(30)]
        a.add("no user", app_id="app")
        secret = a.add("CANARY of u2", app_id="app", user_id="u2")
        a.set_add("tags", "t", app_id="app", user_id="u1")
        sync_once(a, b, peer=scope)
        hidden = a.add("hidden by a lie", app_id="app", user_id="u1")
        # a false scoped claim makes b skip it
        origin = str(a.origin)
        held = unpackb(b.sync_summary())["wm"][origin]  # type: ignore[index]
        b.sync_apply(_claims(a, b, {origin: (held, 99)}, scope))
        assert unpackb(a.sync_changes(b.sync_summary(), peer=scope))["states"] == ()  # type: ignore[index]
        summary = b.sync_summary(digest=True, digest_scope=scope)
        listing = a.sync_changes(summary, peer=scope)
        assert secret.encode() not in listing and b"CANARY" not in listing
        assert b.sync_apply(listing).wanted == (hidden,)
        repair(a, b, peer=scope)
        assert b.get(hidden) is not None and b.get(secret) is None
        assert all(b.get(m) is not None for m in seen)
        # a digest over another scope than the one the peer applies is ignored
        mismatch = a.sync_changes(b.sync_summary(digest=True), peer=scope)
        assert "hashes" not in unpackb(mismatch)  # type: ignore[operator]


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from((None, "a1", "a2")), st.sampled_from((None, "u1", "u2")),
                          st.sampled_from(("memory", "set", "forgotten", "private"))),
                max_size=25),
       st.sampled_from((None, frozenset({None}), frozenset({"a1"}), frozenset({"a1", None}))),
       st.sampled_from((None, frozenset({"u1"}), frozenset({None, "u2"}))))
def test_scope_sums_walk_exactly_the_keys_the_scope_allows(
        tmp_path_factory: pytest.TempPathFactory,
        keys: list[tuple[str | None, str | None, str]],
        apps: frozenset[str | None] | None, users: frozenset[str | None] | None) -> None:
    scope = PeerScope(apps=apps, users=users)
    with Replica.open(tmp_path_factory.mktemp("sums") / "r", replica_id="r") as r:
        for i, (app, user, kind) in enumerate(keys):
            if kind == "set":
                r.set_add(f"set-{i}", i, app_id=app, user_id=user)
            else:
                mid = r.add(f"m{i}", app_id=app, user_id=user,
                            tier="private" if kind == "private" else "shared")
                if kind == "forgotten":
                    r.forget(mid)
        expected = [0] * BUCKETS
        with r._env.read() as txn:
            for skey, raw in txn.prefix("state", b""):
                state = load(txn, skey[1:].decode())[2]
                assert state is not None
                h = state.header
                if h.shareable and scope.allows(h.app_id, h.user_id):
                    expected[skey[0]] = (expected[skey[0]] + item_hash(skey, raw)) % 2**64
            got = scope_sums(txn, scope)
        assert got == b"".join(s.to_bytes(8, "big") for s in expected)


def test_listings_larger_than_max_bytes_spread_over_rounds(tmp_path: Path) -> None:
    clock = ticking()
    rng = random.Random(3)
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        ids = [a.add(f"memory {i}") for i in range(600)]
        sync_once(a, b)
        for mid in rng.sample(ids, 40):
            a.update(mid, "changed where b's watermarks cannot see")
        b.sync_apply(_claims(a, b, {str(a.origin): (600, 10**6)}))  # a lie hides the updates
        repair(a, b, max_bytes=2000)
        assert a.state_digest() == b.state_digest()


def test_want_is_bounded_locally_and_on_the_wire(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        with pytest.raises(InvalidArgumentError):
            a.sync_summary(want=[f"k{i}" for i in range(MAX_WANT + 1)])
        with pytest.raises(InvalidArgumentError):
            a.sync_summary(want="one-id")  # type: ignore[arg-type]
        plain = dict(unpackb(a.sync_summary()))  # type: ignore[arg-type]
        for bad in (tuple(f"k{i}" for i in range(MAX_WANT + 1)), ("",), (b"k",), "k"):
            with pytest.raises(DecodeError):
                a.sync_changes(packb(dict(plain, want=bad)))


def test_a_summary_at_every_cap_still_fits_a_frame(tmp_path: Path) -> None:
    """The arithmetic of _watermarks.py and _repair.py, checked: the cap's worth of
    128-byte origins, the most ``want`` allows, a digest over the widest scope."""
    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        plain = dict(unpackb(a.sync_summary(digest=True)))  # type: ignore[arg-type]
    want = tuple(f"{i:06d}".ljust(MAX_WANT_BYTES // MAX_WANT, "k") for i in range(MAX_WANT))
    assert sum(len(k) for k in want) == MAX_WANT_BYTES
    widest = tuple(sorted(f"{i:04d}".ljust(256, "v") for i in range(256)))
    plain.update(wm={f"{i:06d}".ljust(128, "o"): 2**63 - 1 for i in range(MAX_SUMMARY_ORIGINS)},
                 want=want, digest={"scope": (widest, widest), "sums": bytes(BUCKETS * 8)})
    data = packb(plain)
    assert len(data) < 0.75 * SessionConfig().max_frame  # 2.9 MB of 4 MiB
    with Replica.open(tmp_path / "b", replica_id="rb") as b:
        b.sync_changes(data)  # it parses


def test_a_shareable_state_never_joins_a_key_private_here(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        a.set_add("todo", "ship it")  # a shared set named like b's private one
        b.set_add("todo", "CANARY private item", run_id="run-1")
        result = b.sync_apply(a.sync_changes(b.sync_summary()))
        assert [(r.key, r.reason) for r in result.refused] == [("todo", "private")]
        assert b"CANARY" not in b.sync_changes(a.sync_summary())

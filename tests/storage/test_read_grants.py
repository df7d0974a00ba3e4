"""Read scopes from credentials (issue 16, deliverable 3) at the storage level: a peer's
``PeerScope`` built from its credential's read grants (a union of four-tier patterns)
filters ``sync_changes``, travels as the payload's scope, keeps scoped watermarks
scoped, and digest repair over it stays exact."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_once, ticking

from memmesh.benchmarks.bench_repair import repair_cycle
from memmesh.crdt import DecodeError, packb
from memmesh.storage import PeerScope, Replica
from memmesh.storage._digest import BUCKETS, item_hash
from memmesh.storage._keycodec import decode
from memmesh.storage._repair import scope_sums
from memmesh.storage.wire import parse_scope, restrict, scope_plain
from memmesh.trust import Grant, parse_grants


def _scope(*grants: str) -> PeerScope | None:
    return restrict(None, parse_grants(grants))


def test_a_peer_whose_credential_reads_alice_never_receives_bobs_memory(
        tmp_path: Path) -> None:
    clock = ticking()
    scope = _scope("users=alice")
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mine = [a.add(f"alice fact {i}", user_id="alice") for i in range(20)]
        secret = a.add("CANARY of bob", user_id="bob")
        nobody = a.add("a fact of no user")
        payloads = sync_once(a, b, peer=scope)
        assert all(b"CANARY" not in p and secret.encode() not in p for p in payloads)
        assert all(b.get(m) is not None for m in mine)
        assert b.get(secret) is None and b.get(nobody) is None
        assert b.sync_apply(payloads[-1]).scope == scope
        # later writes: the same rule, and the watermark passed bob's key by
        later = a.add("alice again", user_id="alice")
        a.update(secret, "CANARY of bob, updated")
        assert all(b"CANARY" not in p for p in sync_once(a, b, peer=scope))
        assert b.get(later) is not None and b.get(secret) is None


def test_a_peer_granted_one_agent_gets_only_that_agents_memories(tmp_path: Path) -> None:
    clock = ticking()
    scope = _scope("agents=x")
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        xs = [a.add(f"x {i}", agent_id="x", user_id=f"u{i}") for i in range(5)]
        others = [a.add("y", agent_id="y"), a.add("no agent"), a.add("x's run", agent_id="x",
                                                                     run_id="r1", tier="shared")]
        sync_once(a, b, peer=scope)
        assert all(b.get(m) is not None for m in [*xs, others[2]])
        assert b.get(others[0]) is None and b.get(others[1]) is None


def test_read_grants_are_a_union_and_an_acl_narrows_them(tmp_path: Path) -> None:
    clock = ticking()
    grants = parse_grants(["users=alice", "apps=crm;users=-"])
    acl = PeerScope(apps=frozenset({"crm"}))
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a:
        alice_crm = a.add("alice in crm", app_id="crm", user_id="alice")
        alice_web = a.add("alice on the web", app_id="web", user_id="alice")
        crm_fact = a.add("crm fact", app_id="crm")
        web_fact = a.add("web fact", app_id="web")
        for scope, seen in ((restrict(None, grants), {alice_crm, alice_web, crm_fact}),
                            (restrict(acl, grants), {alice_crm, crm_fact}),
                            (restrict(acl, None), {alice_crm, crm_fact})):
            with Replica.open(tmp_path / f"b{len(seen)}{scope is acl}", replica_id="rb",
                              clock=clock) as b:
                sync_once(a, b, peer=scope)
                held = {m for m in (alice_crm, alice_web, crm_fact, web_fact)
                        if b.get(m) is not None}
                assert held == seen


def test_repair_converges_for_a_peer_scoped_by_its_grants(tmp_path: Path) -> None:
    clock = ticking()
    scope = _scope("users=alice;agents=x", "apps=crm;runs=-")
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        for i in range(30):
            a.add(f"alice {i}", user_id="alice", agent_id="x" if i % 2 else "z")
            a.add(f"crm {i}", app_id="crm", run_id=None if i % 3 else "r", tier="shared")
        secret = a.add("CANARY of bob", user_id="bob", agent_id="x")
        sync_once(a, b, peer=scope)
        # a false scoped claim makes b skip the next write: only repair finds it
        hidden = a.add("hidden by a lie", user_id="alice", agent_id="x")
        origin = str(a.origin)
        b.sync_apply(_claims_only(a, b, origin, scope))
        sync_once(a, b, peer=scope)
        assert b.get(hidden) is None
        repair_cycle(a, b, peer=scope)
        assert b.get(hidden) is not None and b.get(secret) is None
        with a._env.read() as ta, b._env.read() as tb:
            assert scope_sums(ta, scope) == scope_sums(tb, scope)


def _claims_only(src: Replica, dst: Replica, origin: str, scope: PeerScope | None) -> bytes:
    """A payload from ``src`` with no states and a claim for ``origin`` one past what
    ``dst`` holds, filtered with ``scope`` (a false scoped claim)."""
    from memmesh.crdt import unpackb

    held = unpackb(dst.sync_summary())["wm"].get(origin, 0)  # type: ignore[index]
    plain = dict(unpackb(src.sync_changes(dst.sync_summary(), peer=scope)))  # type: ignore[arg-type]
    return packb(dict(plain, states=(), through={origin: (held, held + 99)},
                      scope=scope_plain(scope)))


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from((None, "a1")), st.sampled_from((None, "u1", "u2")),
                          st.sampled_from((None, "x", "y")), st.sampled_from((None, "r"))),
                max_size=20),
       st.lists(st.sampled_from(("users=u1", "agents=x", "apps=a1;users=-", "runs=r;agents=x,-",
                                 "all", "users=u2;agents=y")), max_size=3))
def test_scope_sums_over_grants_count_exactly_the_keys_the_scope_allows(
        tmp_path_factory: pytest.TempPathFactory,
        keys: list[tuple[str | None, str | None, str | None, str | None]],
        grants: list[str]) -> None:
    scope = PeerScope(apps=frozenset({"a1", None})).restricted_to(parse_grants(grants))
    with Replica.open(tmp_path_factory.mktemp("sums") / "r", replica_id="r") as r:
        for i, (app, user, agent, run) in enumerate(keys):
            r.add(f"m{i}", app_id=app, user_id=user, agent_id=agent, run_id=run,
                  tier="shared")
        expected = [0] * BUCKETS
        with r._env.read() as txn:
            for skey, raw in txn.prefix("state", b""):
                h = decode(raw, check_canonical=False).header
                if scope.allows(h.app_id, h.user_id, h.agent_id, h.run_id):
                    expected[skey[0]] = (expected[skey[0]] + item_hash(skey, raw)) % 2**64
            assert scope_sums(txn, scope) == b"".join(s.to_bytes(8, "big") for s in expected)


def test_a_scope_with_grants_travels_canonically_and_bad_forms_are_refused() -> None:
    scope = _scope("users=bob", "users=alice;agents=x,-")
    assert scope is not None
    assert parse_scope(scope_plain(scope)) == scope
    # the two-field form stays as it was for scopes of apps and users only
    assert scope_plain(PeerScope(users=frozenset({"a"}))) == (None, ("a",))
    assert _scope("all") is None and _scope() == PeerScope(grants=())
    plain = scope_plain(scope)
    assert plain is not None
    for bad in ((None, None, None, None, None),  # must be the two-field form
                (*plain[:4], tuple(reversed(plain[4]))),  # grants not canonical
                (*plain[:4], (("x",),)),  # a grant of one tier
                (*plain[:4], tuple(Grant(users=frozenset({str(i)})).plain()
                                   for i in range(300)))):  # too many grants
        with pytest.raises(DecodeError):
            parse_scope(bad)

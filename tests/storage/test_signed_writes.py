"""Signed writes (issue 16, deliverable 2): a member's writes carry proofs of its
credential, every trusting replica checks them against the origin's grants, whoever
relays them; local writes outside the member's own grants are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from signed_helpers import (
    DAY,
    NOW,
    altered,
    hostile,
    member,
    open_member,
    pull,
    sync_all,
)

from memmesh.crdt import Dot
from memmesh.crdt.keystate import KeyState
from memmesh.storage import ReplicaIdMismatchError
from memmesh.storage._keycodec import decode
from memmesh.storage.wire import Summary, parse_changes
from memmesh.trust import Authority, PermissionDeniedError


def test_a_write_outside_the_members_grant_is_refused_locally_and_changes_nothing(
        tmp_path: Path) -> None:
    with open_member(tmp_path, member("mallory", "users=bob")) as m:
        before = m.state_digest()
        with pytest.raises(PermissionDeniedError):
            m.add("alice owes me", user_id="alice")
        assert m.list() == [] and m.state_digest() == before
        mid = m.add("bob's note", user_id="bob")
        assert m.get(mid).text == "bob's note"


@pytest.mark.parametrize("relay_is_hostile", [False, True])
def test_a_forged_write_for_another_user_is_stored_nowhere_directly_or_through_a_relay(
        tmp_path: Path, relay_is_hostile: bool) -> None:
    mallory = hostile(open_member(tmp_path, member("mallory", "users=bob")))
    relay_id = member("relay", "users=carol")
    # a hostile relay checks nothing and passes on whatever it holds, proofs and all
    relay = open_member(tmp_path, None if relay_is_hostile else relay_id, name="relay",
                        replica_id="relay")
    bob = open_member(tmp_path, member("bob-r", "users=bob"))
    with mallory, relay, bob:
        forged = mallory.add("alice owes mallory 100", user_id="alice")
        fine = mallory.add("bob's errand", user_id="bob")
        direct = pull(bob, mallory)
        assert [(r.key, r.reason) for r in direct.refused] == [(forged, "no-grant")]
        through = pull(relay, mallory)
        assert (relay.get(forged) is not None) == relay_is_hostile
        pull(bob, relay)
        assert bob.get(forged) is None and bob.get(fine) is not None
        assert all(r.key == forged for r in through.refused)


@pytest.mark.parametrize("field", ["text", "role"])
def test_a_relay_that_alters_a_version_is_refused(tmp_path: Path, field: str) -> None:
    alice = open_member(tmp_path, member("alice-r", "users=alice", roles=("lead", "member")))
    bob = open_member(tmp_path, member("bob-r", "users=alice;users=bob"))
    with alice, bob:
        mid = alice.add("the meeting is at 10", user_id="alice", role="member")

        def change(state: KeyState) -> KeyState:
            ((dot, v),) = state.body.items()
            new = v._replace(text="the meeting is at 11") if field == "text" \
                else v._replace(role="lead")
            state.body[dot] = new
            state.events = {d: e._replace(version=new, role=new.role)
                            for d, e in state.events.items()}
            return state

        payload = altered(alice.sync_changes(bob.sync_summary()), change)
        result = bob.sync_apply(payload)
        assert [(r.key, r.reason) for r in result.refused] == [(mid, "bad-proof")]
        assert bob.get(mid) is None
        pull(bob, alice)  # the honest state still arrives
        assert bob.get(mid).text == "the meeting is at 10"


def test_a_peer_inflating_another_origins_context_is_refused(tmp_path: Path) -> None:
    alice = open_member(tmp_path, member("alice-r", "users=alice"))
    bob = open_member(tmp_path, member("bob-r", "users=alice"))
    with alice, bob:
        mid = alice.add("v1", user_id="alice")
        pull(bob, alice)
        alice.update(mid, "v2")

        def inflate(state: KeyState) -> KeyState:
            origin = alice.origin
            assert origin is not None
            state.ctx[origin] += 1000  # would hide alice's next 1000 writes
            return state

        payload = altered(alice.sync_changes(bob.sync_summary()), inflate)
        result = bob.sync_apply(payload)
        assert [(r.key, r.reason) for r in result.refused] == [(mid, "unsigned")]
        pull(bob, alice)
        assert bob.get(mid).text == "v2"


def test_roles_and_actors_not_granted_are_refused_locally_and_by_peers(
        tmp_path: Path) -> None:
    identity = member("agent-r", "users=alice", roles=("member",), actors=("planner",))
    with open_member(tmp_path, identity) as m, \
            open_member(tmp_path, member("bob-r", "all")) as peer:
        with pytest.raises(PermissionDeniedError):
            m.add("x", user_id="alice", role="lead")
        with pytest.raises(PermissionDeniedError):
            m.add("x", user_id="alice", actor="coder")
        ok = m.add("defaults", user_id="alice")
        record = m.get(ok)
        assert (record.versions[0].actor, record.versions[0].role) == ("planner", "member")
        hostile(m)
        lead = m.add("as lead", user_id="alice", role="lead")
        coder = m.add("as coder", user_id="alice", actor="coder")
        result = pull(peer, m)
        assert sorted((r.key, r.reason) for r in result.refused) == sorted(
            [(lead, "no-grant"), (coder, "no-grant")])
        assert peer.get(ok) is not None


def test_another_authoritys_credential_and_an_expired_one_are_refused(
        tmp_path: Path) -> None:
    other = Authority.create("elsewhere")
    stranger = open_member(tmp_path, member("stranger", "all", authority=other))
    clock = [NOW]
    late = hostile(open_member(tmp_path, member("late", "all", expires_ms=NOW + DAY),
                               clock=lambda: clock[0]))
    peer = open_member(tmp_path, member("peer", "all"), clock=lambda: clock[0])
    with stranger, late, peer:
        a = stranger.add("from elsewhere")
        assert [r.reason for r in pull(peer, stranger).refused] == ["unknown-credential"]
        assert peer.get(a) is None
        clock[0] = NOW + 2 * DAY
        b = late.add("after expiry")
        assert [(r.key, r.reason) for r in pull(peer, late).refused] == [(b, "expired")]


def test_the_replica_id_must_be_the_credentials(tmp_path: Path) -> None:
    identity = member("alice-r", "all")
    with open_member(tmp_path, identity, name="fresh") as fresh:
        assert fresh.replica_id == "alice-r"
    with open_member(tmp_path, None, name="other", replica_id="someone"):
        pass
    with pytest.raises(ReplicaIdMismatchError):
        open_member(tmp_path, identity, name="other")
    with pytest.raises(ReplicaIdMismatchError):
        open_member(tmp_path, identity, name="x", replica_id="bob")


def test_an_honest_signed_fleet_converges_with_every_proof_checked(tmp_path: Path) -> None:
    ids = [member(f"m{i}", "all", roles=("lead", "member")) for i in range(3)]
    a, b, c = fleet = [open_member(tmp_path, i, history_limit=4) for i in ids]
    try:
        with a.batch():
            mids = [a.add(f"fact {i}", user_id="alice") for i in range(10)]
            a.set_add("tags", "x", user_id="alice")
        b.add("lww", user_id="bob", policy="lww")
        assert not sync_all(fleet, rounds=1)
        for i in range(6):
            b.update(mids[0], f"b{i}")  # compacts superseded events away
        c.update(mids[1], "from c")
        a.update(mids[1], "from a")  # a conflict
        b.delete(mids[2])
        c.forget(mids[3])
        a.set_remove("tags", "x")
        b.set_add("tags", "y")
        # relays only: c hears a and b through each other
        assert not pull(b, a).refused and not pull(c, b).refused
        assert not pull(a, c).refused
        assert not sync_all(fleet)
        (conflict,) = a.conflicts()
        a.resolve(conflict.id, "merged", resolver="test", inputs=tuple(
            v.dot for v in conflict.versions), role="lead")
        assert not sync_all(fleet)
        digests = {r.state_digest() for r in fleet}
        assert len(digests) == 1
        assert c.get(mids[1]).text == "merged" and c.get(mids[3]) is None
        assert c.set_members("tags") == frozenset({"y"})
        assert all(r.trust is not None and r.trust.verified > 0 for r in fleet)
    finally:
        for r in fleet:
            r.close()


def test_a_dot_held_with_its_proof_is_not_verified_again(tmp_path: Path) -> None:
    with open_member(tmp_path, member("a", "all")) as a, \
            open_member(tmp_path, member("b", "all")) as b:
        with a.batch():
            for i in range(100):
                a.add(f"fact {i}")
        payload = a.sync_changes(b.sync_summary())
        assert not b.sync_apply(payload).refused
        assert b.trust is not None
        assert b.trust.verified == 2  # two chunks of 64 leaves: one signature each
        b.sync_apply(payload)
        assert b.trust.verified == 2


def test_proofs_are_pruned_to_the_dots_a_state_needs(tmp_path: Path) -> None:
    with open_member(tmp_path, member("a", "all"), history_limit=0) as a:
        mid = a.add("v0")
        for i in range(5):
            a.update(mid, f"v{i + 1}")
        payload = parse_changes(a.sync_changes(Summary("nobody", {}, bytes(32)).pack()))
        (signed,) = payload.proofs
        state = decode(payload.states[0])
        (dot,) = state.body
        assert {(o, c) for o, c, _ in signed} == {(dot.replica, dot.counter)}
        assert dot == Dot(a.origin or "", 6)

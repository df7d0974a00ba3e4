"""Revocations that gossip (issue 16, deliverable 4): an authority's revocation spreads
by sync like a memory, every trusting replica then refuses the revoked credential's
writes stamped at or after it, and ``audit()`` flags (and can hide) what was stored
before it arrived."""

from __future__ import annotations

from pathlib import Path

import pytest
from signed_helpers import AUTHORITY, NOW, member, open_member, pull

from memmesh.crdt import DecodeError
from memmesh.storage import NoTrustStoreError, Replica
from memmesh.storage.wire import Changes, parse_changes, parse_summary
from memmesh.trust import Authority, CredentialError, MemberIdentity, PermissionDeniedError

REVOKED_AT = NOW + 1_000


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _fleet(tmp_path: Path, clock: Clock) -> tuple[MemberIdentity, list[Replica]]:
    """Mallory (a member with write on bob's memories) and three trusting replicas."""
    mallory = member("mallory", "users=bob")
    return mallory, [open_member(tmp_path, mallory, clock=clock)] + [
        open_member(tmp_path, member(name, "all"), clock=clock) for name in "abc"]


def test_a_revocation_spreads_by_sync_and_the_members_later_writes_are_refused_everywhere(
        tmp_path: Path) -> None:
    clock = Clock()
    identity, (mallory, a, b, c) = _fleet(tmp_path, clock)
    with mallory, a, b, c:
        early = mallory.add("bob's errand", user_id="bob")
        for peer in (a, b, c):
            assert not pull(peer, mallory).refused
        rev = AUTHORITY.revoke(identity.credential.id, at_ms=REVOKED_AT, reason="laptop lost")
        assert a.add_revocation(rev) is True
        assert pull(b, a).revocations == 1  # A -> B -> C, by sync alone
        assert pull(c, b).revocations == 1
        assert all(r.revocations() == [rev] for r in (a, b, c))
        clock.now = REVOKED_AT + 5_000
        late = mallory.add("bob now owes mallory", user_id="bob")
        for peer in (a, b, c):
            result = pull(peer, mallory)
            assert [(r.key, r.reason) for r in result.refused] == [(late, "revoked")]
            assert peer.get(late) is None and peer.get(early) is not None
            report = peer.audit()
            (finding,) = report.findings
            assert (finding.memory_id, finding.reason, finding.replica_id, finding.stamp_ms) \
                == (early, "by-revoked-member", "mallory", NOW)
            assert finding.origin == mallory.origin and not finding.hidden
            assert peer.audit(hide=True).hidden == 0 and peer.get(early) is not None


def test_a_write_accepted_before_the_revocation_arrived_is_flagged_revoked_and_hidden(
        tmp_path: Path) -> None:
    clock = Clock(REVOKED_AT + 5_000)
    identity, (mallory, a, b, _c) = _fleet(tmp_path, clock)
    with mallory, a, b, _c:
        kept = a.add("alice's fact")
        late = mallory.add("bob owes mallory", user_id="bob", actor="mallory-bot")
        assert not pull(b, mallory).refused and not pull(b, a).refused
        before = b.state_digest()
        b.add_revocation(AUTHORITY.revoke(identity.credential.id, at_ms=REVOKED_AT).to_bytes())
        report = b.audit()
        assert [(f.memory_id, f.reason, f.actor, f.hidden) for f in report.findings] == [
            (late, "revoked", "mallory-bot", False)]
        assert b.get(late) is not None  # reported, not hidden
        hidden = b.audit(hide=True)
        assert hidden.hidden == 1 and hidden.findings[0].hidden
        assert b.get(late) is None and [r.id for r in b.list()] == [kept]
        assert b.view(user_id="bob").get(late) is None
        assert b.state_digest() == before  # local only: the replicated state is as it was
        assert b.audit().hidden == 1  # hide=False reports, leaves the quarantine
        path = b.path
    with Replica.open(path, identity=member("b", "all"), clock=clock) as again:
        assert again.get(late) is None  # the quarantine and the revocation persist
        assert len(again.revocations()) == 1


def test_the_earliest_revocation_wins_and_is_loaded_at_open(tmp_path: Path) -> None:
    clock = Clock(REVOKED_AT + 5_000)
    identity = member("mallory", "all")
    root = tmp_path / "a"
    with Replica.open(root, identity=member("a", "all"), clock=clock) as a:
        cid = identity.credential.id
        assert a.add_revocation(AUTHORITY.revoke(cid, at_ms=REVOKED_AT + 10)) is True
        assert a.add_revocation(AUTHORITY.revoke(cid, at_ms=REVOKED_AT + 10)) is False
        assert a.add_revocation(AUTHORITY.revoke(cid, at_ms=REVOKED_AT)) is True
        assert a.add_revocation(AUTHORITY.revoke(cid, at_ms=REVOKED_AT + 20)) is False
        assert [r.revoked_at_ms for r in a.revocations()] == [REVOKED_AT]
        assert a.stats()["revocations"] == 1
        mallory_dir = tmp_path / "mallory"
        with Replica.open(mallory_dir, identity=identity, clock=clock) as m:
            assert pull(m, a).revocations == 1
    # the member's own replica holds its revocation: its later writes are refused locally
    with Replica.open(mallory_dir, identity=identity, clock=clock) as m, \
            pytest.raises(PermissionDeniedError):
        m.add("after my revocation")


def test_a_forged_revocation_is_refused_on_its_own_and_the_payload_applies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    identity, (mallory, a, b, _c) = _fleet(tmp_path, clock)
    with mallory, a, b, _c:
        mid = a.add("a fact")
        forged = Authority.create("forger").revoke(identity.credential.id, at_ms=0)
        c = parse_changes(a.sync_changes(b.sync_summary()))
        payload = Changes(c.rid, c.scope, c.states, c.through, c.hashes, c.proofs, c.creds,
                          (forged.to_bytes(), b"not a revocation")).pack()
        result = b.sync_apply(payload)
        assert [(r.key, r.reason) for r in result.refused] == [(None, "bad-revocation")] * 2
        assert result.revocations == 0 and result.applied == 1 and b.get(mid) is not None
        assert b.revocations() == []
        assert "refused a revocation" in caplog.text
        with pytest.raises(CredentialError):
            b.add_revocation(forged)
        with pytest.raises(DecodeError):
            b.add_revocation(b"\x93junk")
        assert b.revocations() == []


def test_a_replica_without_a_trust_store_neither_keeps_nor_relays_revocations(
        tmp_path: Path) -> None:
    with open_member(tmp_path, member("a", "all")) as a, \
            open_member(tmp_path, None, name="plain", replica_id="plain") as plain:
        a.add_revocation(AUTHORITY.revoke(bytes(16), at_ms=NOW))
        with pytest.raises(NoTrustStoreError):
            plain.add_revocation(AUTHORITY.revoke(bytes(16), at_ms=NOW))
        with pytest.raises(NoTrustStoreError):
            plain.audit()
        assert parse_summary(plain.sync_summary()).revoked is None
        assert parse_changes(a.sync_changes(plain.sync_summary())).revocations == ()
        # offered anyway: ignored, not kept, not relayed
        summary = parse_summary(a.sync_summary())
        assert summary.revoked is not None and len(summary.revoked) == 1
        c = parse_changes(a.sync_changes(plain.sync_summary()))
        forced = Changes(c.rid, c.scope, c.states, c.through, c.hashes, c.proofs, c.creds,
                         tuple(r.to_bytes() for r in a.revocations())).pack()
        assert plain.sync_apply(forced).revocations == 0 and plain.revocations() == []
        with open_member(tmp_path, member("z", "all")) as z:
            assert parse_changes(plain.sync_changes(z.sync_summary())).revocations == ()


def test_audit_flags_writes_from_before_signing_and_hide_keeps_the_rest_of_a_conflict(
        tmp_path: Path) -> None:
    clock = Clock()
    root = tmp_path / "old"
    with Replica.open(root, replica_id="old", clock=clock) as plain:
        old = plain.add("from before signing", user_id="bob")
    identity, (mallory, _a, b, _c) = _fleet(tmp_path, clock)
    with Replica.open(root, identity=member("old", "all"), clock=clock) as a, mallory, _a, \
            b, _c:
        report = a.audit()
        assert [(f.memory_id, f.reason, f.replica_id, f.credential_id) for f in
                report.findings] == [(old, "unsigned", None, None)]
        mid = b.add("the meeting is at 10", user_id="bob")
        pull(mallory, b)
        clock.now = REVOKED_AT + 5
        b.update(mid, "at 11")
        mallory.update(mid, "cancelled")  # concurrent: a conflict on a
        assert not pull(a, b).refused and not pull(a, mallory).refused
        assert a.get(mid).conflicted
        a.add_revocation(AUTHORITY.revoke(identity.credential.id, at_ms=REVOKED_AT))
        found = a.audit(hide=True)
        assert sorted(f.reason for f in found.findings) == ["revoked", "unsigned"]
        assert found.hidden == 2 and a.get(old) is None
        assert a.get(mid).text == "at 11" and a.conflicts() == []

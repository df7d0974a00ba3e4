"""Signed writes and encryption at rest together, as a credentialed fleet runs them: the
at-rest key derived from each member's credential, a forgotten canary that reaches no
file on the writer, on a peer, or in a backup taken afterwards, and proofs that carry no
content."""

from __future__ import annotations

from pathlib import Path

from at_rest_helpers import files_holding
from signed_helpers import NOW, member, pull

from memmesh.storage import Replica
from memmesh.trust import MemberIdentity

CANARY = "canary-7f3a-the-patient-is-allergic-to-penicillin"


def _open(root: Path, identity: MemberIdentity) -> Replica:
    return Replica.open(root / identity.replica_id, identity=identity,
                        at_rest_key=identity.at_rest_key(), clock=lambda: NOW)


def test_a_forgotten_canary_leaves_no_byte_on_a_signed_encrypted_fleet(tmp_path: Path) -> None:
    laptop = member("alice-laptop", "users=alice")
    alice = _open(tmp_path, laptop)
    peer = _open(tmp_path, member("alice-phone", "users=alice"))
    mid = alice.add(CANARY, user_id="alice", metadata={"note": CANARY})
    assert not pull(peer, alice).refused
    assert peer.get(mid) is not None and peer.get(mid).text == CANARY  # type: ignore[union-attr]
    needle = CANARY.encode()
    # encrypted: not in plaintext anywhere, even before the forget (proof rows hold digests)
    assert files_holding(tmp_path, needle) == {}
    alice.forget(mid)
    assert not pull(peer, alice).refused
    assert peer.get(mid) is None
    alice.backup(tmp_path / "backup-after")
    alice_digest = alice.state_digest()
    for replica in (alice, peer):
        replica.close()
    assert files_holding(tmp_path, needle) == {}
    # the backup opens with the member's key, verifies, and holds only the tombstone
    with Replica.open(tmp_path / "backup-after", identity=laptop,
                      at_rest_key=laptop.at_rest_key(), clock=lambda: NOW) as restored:
        assert restored.get(mid) is None
        assert restored.state_digest() == alice_digest

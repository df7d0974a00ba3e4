"""The trust core: grants, credentials, member files, revocations, the write rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.trust import (
    Authority,
    AuthorityPublic,
    Credential,
    CredentialError,
    Grant,
    MemberIdentity,
    Revocation,
    TrustStore,
    parse_grants,
)

NOW = 1_790_000_000_000
DAY = 86_400_000


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.create("acme", now_ms=NOW)


@pytest.fixture(scope="module")
def alice(authority: Authority) -> MemberIdentity:
    return authority.issue("alice-laptop", read=parse_grants(["users=alice,bob"]),
                           write=parse_grants(["users=alice"]), roles={"lead"},
                           expires_ms=NOW + 90 * DAY, now_ms=NOW)


def test_a_grant_covers_only_the_values_it_names_and_dash_means_unset() -> None:
    g = Grant.parse("apps=crm;users=alice,-")
    assert g.covers("crm", "alice", None, None)
    assert g.covers("crm", None, "bot", "r1")
    assert not g.covers("crm", "bob", None, None)
    assert not g.covers("hr", "alice", None, None)
    assert Grant.parse("all").covers("x", "y", "z", "w")
    assert str(g) == "apps=crm;users=-,alice"
    assert Grant.parse(str(g)) == g


@pytest.mark.parametrize("text", ["users", "people=alice", "users=alice;users=bob",
                                  "users=alice,,bob", ""])
def test_a_malformed_grant_is_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(CredentialError):
        Grant.parse(text)


def test_a_credential_round_trips_and_verifies_against_its_authority(
        authority: Authority, alice: MemberIdentity) -> None:
    cred = Credential.from_bytes(alice.credential.to_bytes())
    assert cred == alice.credential
    cred.verify(authority.public)
    assert cred.may_write("app", "alice", None, None, "lead") is None
    assert cred.may_write("app", "bob", None, None) is not None
    assert cred.may_write("app", "alice", None, None, "admin") == "role 'admin' not granted"
    assert cred.may_read(None, "bob", None, None) and not cred.may_read(None, "eve", None, None)


def test_a_credential_from_another_authority_or_altered_is_refused(
        alice: MemberIdentity) -> None:
    other = Authority.create("evil", now_ms=NOW)
    with pytest.raises(CredentialError, match="another authority"):
        alice.credential.verify(other.public)
    # widen the grant inside the signed body: the signature no longer holds
    body, sig = unpackb(alice.credential.to_bytes())  # type: ignore[misc]
    fields = list(unpackb(body))  # type: ignore[call-overload]
    fields[5] = (Grant().plain(),)
    forged = Credential.from_bytes(packb((packb(tuple(fields)), sig)))
    with pytest.raises(CredentialError, match="does not verify"):
        forged.verify(alice.authority)


def test_a_minted_credential_for_a_taken_replica_id_does_not_verify(
        authority: Authority, alice: MemberIdentity) -> None:
    mallory = Authority.create("acme", now_ms=NOW)  # same name, another key
    fake = mallory.issue("alice-laptop", write=(Grant(),), expires_ms=NOW + DAY, now_ms=NOW)
    with pytest.raises(CredentialError):
        TrustStore(authority.public).admit(fake.credential.to_bytes())


@pytest.mark.parametrize("data", [b"", b"\x00" * 10, packb(("x", b"y")),
                                  packb((packb(("memmesh-credential", 2)), b"s" * 64)),
                                  b"\x92" + b"\xc6\xff\xff\xff\xff"])
def test_malformed_credential_bytes_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Credential.from_bytes(data)


def test_oversized_credential_bytes_are_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="at most"):
        Credential.from_bytes(b"\x00" * (70 * 1024))


def test_a_member_file_round_trips_is_private_and_never_overwritten(
        tmp_path: Path, alice: MemberIdentity) -> None:
    path = tmp_path / "alice.cred"
    alice.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = MemberIdentity.load(path)
    assert loaded.credential == alice.credential
    assert loaded.sign(b"m") == alice.sign(b"m")
    assert loaded.at_rest_key() == alice.at_rest_key() and len(alice.at_rest_key()) == 32
    with pytest.raises(CredentialError, match="exists"):
        alice.save(path)


def test_the_tls_certificate_names_neither_the_replica_nor_its_grants(
        alice: MemberIdentity) -> None:
    cert = x509.load_pem_x509_certificate(alice.cert_pem)
    text = cert.subject.rfc4514_string()
    assert "alice" not in text and alice.credential.id.hex() in text
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(alice.authority.ca_pem))


def test_an_authority_file_and_its_public_file_round_trip(
        tmp_path: Path, authority: Authority) -> None:
    authority.save(tmp_path / "issuer.key")
    authority.public.save(tmp_path / "issuer.pub")
    assert stat.S_IMODE(os.stat(tmp_path / "issuer.key").st_mode) == 0o600
    assert Authority.load(tmp_path / "issuer.key").public == authority.public
    assert AuthorityPublic.load(tmp_path / "issuer.pub").fingerprint == \
        authority.public.fingerprint
    with pytest.raises(CredentialError, match="not an authority key file"):
        Authority.load(tmp_path / "issuer.pub")


def test_a_file_that_is_not_a_member_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"hello")
    with pytest.raises(CredentialError, match="no PEM blocks"):
        MemberIdentity.load(path)
    with pytest.raises(CredentialError, match="cannot read"):
        MemberIdentity.load(tmp_path / "missing")


def test_the_write_rule_names_each_reason(authority: Authority, alice: MemberIdentity) -> None:
    store = TrustStore(authority.public)
    cid = store.admit(alice.credential.to_bytes()).id

    def check(**kw: object) -> str | None:
        args: dict[str, object] = dict(replica_id="alice-laptop", app_id=None,
                                       user_id="alice", agent_id=None, run_id=None,
                                       role=None, actor=None, stamp_ms=NOW)
        args.update(kw)
        return store.check_write(cid, **args)  # type: ignore[arg-type]

    assert check() is None
    assert check(user_id="bob").startswith("no-grant")
    assert check(role="admin").startswith("no-grant")
    assert check(replica_id="bob-laptop").startswith("wrong-replica")
    assert check(stamp_ms=NOW + 91 * DAY).startswith("expired")
    assert store.check_write(b"\x00" * 16, replica_id="x", app_id=None, user_id=None,
                             agent_id=None, run_id=None, role=None, actor=None,
                             stamp_ms=NOW).startswith("unknown-credential")
    assert store.add_revocation(authority.revoke(cid, at_ms=NOW + 10).to_bytes())
    assert check(stamp_ms=NOW + 9) is None
    assert check(stamp_ms=NOW + 10).startswith("revoked")


def test_the_earliest_revocation_wins_and_forged_ones_are_refused(
        authority: Authority, alice: MemberIdentity) -> None:
    store = TrustStore(authority.public)
    cid = alice.credential.id
    assert store.add_revocation(authority.revoke(cid, at_ms=NOW + 50))
    assert not store.add_revocation(authority.revoke(cid, at_ms=NOW + 80))
    assert store.add_revocation(authority.revoke(cid, at_ms=NOW + 20).to_bytes())
    assert store.revoked_at(cid) == NOW + 20
    forged = Authority.create("acme", now_ms=NOW).revoke(cid, at_ms=NOW)
    with pytest.raises(CredentialError):
        store.add_revocation(forged)
    assert Revocation.from_bytes(authority.revoke(cid, at_ms=1).to_bytes()).revoked_at_ms == 1


def test_verified_roots_are_cached_and_bad_signatures_are_not(
        authority: Authority, alice: MemberIdentity) -> None:
    store = TrustStore(authority.public, roots=2)
    cid = store.admit(alice.credential).id
    root = b"r" * 16
    sig = alice.sign(root)
    assert store.verify_root(cid, root, sig) and store.verified == 1
    assert store.verify_root(cid, root, sig) and store.verified == 1  # from the cache
    assert not store.verify_root(cid, root, b"\x00" * 64)
    assert not store.verify_root(cid, b"x" * 16, sig)
    assert not store.verify_root(b"\x01" * 16, root, sig)  # unknown credential


def test_a_renewed_credential_keeps_the_member_key_and_its_at_rest_key(
        authority: Authority, alice: MemberIdentity) -> None:
    renewed = authority.issue("alice-laptop", read=alice.credential.read,
                              write=parse_grants(["users=alice", "apps=crm"]),
                              expires_ms=NOW + 400 * DAY, now_ms=NOW + 80 * DAY, renew=alice)
    assert renewed.credential.id != alice.credential.id
    assert renewed.credential.public_key == alice.credential.public_key
    assert renewed.at_rest_key() == alice.at_rest_key()
    fresh = authority.issue("alice-laptop", expires_ms=NOW + DAY, now_ms=NOW)
    assert fresh.at_rest_key() != alice.at_rest_key()
    with pytest.raises(ValueError, match="cannot renew"):
        authority.issue("bob-laptop", expires_ms=NOW + DAY, now_ms=NOW, renew=alice)

"""Signed writes on the wire: proofs and credentials are bounded and validated like
every other byte from a peer; a malformed envelope is a DecodeError that changes
nothing, a malformed proof refuses its key only."""

from __future__ import annotations

from pathlib import Path

import pytest
from signed_helpers import member, open_member

from memmesh.crdt import DecodeError
from memmesh.storage import Replica
from memmesh.storage.wire import MAX_CRED_LEN, MAX_CREDS, MAX_PROOF_LEN, Changes, parse_changes
from memmesh.trust import digest16


def _payload(tmp_path: Path) -> tuple[bytes, Replica, Replica]:
    a = open_member(tmp_path, member("a", "all"))
    b = open_member(tmp_path, member("b", "all"))
    a.add("one")
    a.add("two")
    return a.sync_changes(b.sync_summary()), a, b


def _with(payload: bytes, **fields: object) -> bytes:
    c = parse_changes(payload)
    values = {"rid": c.rid, "scope": c.scope, "states": c.states, "through": c.through,
              "hashes": c.hashes, "proofs": c.proofs, "creds": c.creds} | fields
    return Changes(**values).pack()  # type: ignore[arg-type]


def test_signed_payloads_carry_proofs_parallel_to_states_and_the_origins_credential(
        tmp_path: Path) -> None:
    payload, a, b = _payload(tmp_path)
    with a, b:
        c = parse_changes(payload)
        assert len(c.proofs) == len(c.states) == 2
        assert a.identity is not None
        assert c.creds == (a.identity.credential.to_bytes(),)


@pytest.mark.parametrize("bad", [
    "oversized-proof", "proofs-not-parallel", "proof-not-bytes", "too-many-creds",
    "oversized-cred"])
def test_a_malformed_proof_or_credential_list_refuses_the_envelope(tmp_path: Path,
                                                                   bad: str) -> None:
    payload, a, b = _payload(tmp_path)
    with a, b:
        c = parse_changes(payload)
        (o, n, p), = c.proofs[0]
        broken = {
            "oversized-proof": {"proofs": (((o, n, p + bytes(MAX_PROOF_LEN)),), c.proofs[1])},
            "proofs-not-parallel": {"proofs": c.proofs[:1]},
            "proof-not-bytes": {"proofs": (((o, n, "x"),), c.proofs[1])},
            "too-many-creds": {"creds": c.creds * (MAX_CREDS + 1)},
            "oversized-cred": {"creds": (bytes(MAX_CRED_LEN + 1),)},
        }[bad]
        before = b.state_digest()
        with pytest.raises(DecodeError):
            b.sync_apply(_with(payload, **broken))
        assert b.state_digest() == before


@pytest.mark.parametrize("damage", ["truncated", "flipped-path", "bad-op", "wrong-wall"])
def test_a_damaged_proof_refuses_its_key_only(tmp_path: Path, damage: str) -> None:
    payload, a, b = _payload(tmp_path)
    with a, b:
        c = parse_changes(payload)
        (o, n, p), = c.proofs[0]
        bad = {"truncated": p[:-3], "flipped-path": p[:-1] + bytes((p[-1] ^ 1,)),
               "bad-op": p[:80] + b"\x09" + p[81:],
               "wrong-wall": p[:81] + (1).to_bytes(8, "big") + p[89:]}[damage]
        result = b.sync_apply(_with(payload, proofs=(((o, n, bad),), c.proofs[1])))
        assert [r.reason for r in result.refused] == ["bad-proof"]
        assert len(result.changed) == 1


def test_proofs_relayed_through_an_untrusting_replica_still_verify(tmp_path: Path) -> None:
    payload, a, b = _payload(tmp_path)
    with a, b, open_member(tmp_path, None, name="relay", replica_id="relay") as relay:
        assert not relay.sync_apply(payload).refused
        result = b.sync_apply(relay.sync_changes(b.sync_summary()))
        assert not result.refused and len(result.changed) == 2


def test_max_bytes_counts_the_credentials_a_payload_names(tmp_path: Path) -> None:
    writers = [open_member(tmp_path, member(f"w{i}", "all")) for i in range(4)]
    relay = open_member(tmp_path, member("relay", "all"))
    sink = open_member(tmp_path, member("sink", "all"))
    for i, w in enumerate(writers):
        w.add(f"memory {i} " + "x" * 40)
        relay.sync_apply(w.sync_changes(relay.sync_summary()))
    budget = 900
    for _ in range(20):
        payload = relay.sync_changes(sink.sync_summary(), max_bytes=budget)
        c = parse_changes(payload)
        assert len(c.states) <= 1 or len(payload) <= budget
        # every credential shipped is named by a shipped proof, and none is missing
        named = {p[:16] for proofs in c.proofs for _, _, p in proofs}
        assert {digest16(cred) for cred in c.creds} == named
        assert not sink.sync_apply(payload).refused
        if sink.state_digest() == relay.state_digest():
            break
    assert sink.state_digest() == relay.state_digest()

"""``memmesh revocation add|list`` and ``memmesh audit``: an operator keeps an
authority's revocation (raw bytes or a PEM block) in a replica and audits what it stores
against it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from memmesh._cli import main
from memmesh.storage import Replica
from memmesh.trust import Authority, Grant

NOW = 1_700_000_000_000


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_operator_adds_a_revocation_file_and_audits_the_members_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    authority = Authority.create("cli")
    identity = authority.issue("ops", write=(Grant.parse("all"),), read=(Grant.parse("all"),),
                               expires_ms=NOW + 10**10, now_ms=NOW)
    mallory = authority.issue("mallory", write=(Grant.parse("all"),), expires_ms=NOW + 10**10,
                              now_ms=NOW)
    cred = tmp_path / "ops.member"
    identity.save(cred)
    public = tmp_path / "authority.pem"
    authority.public.save(public)
    data = tmp_path / "data"
    clock = [NOW + 5_000]
    with Replica.open(tmp_path / "m", identity=mallory, clock=lambda: clock[0]) as m, \
            Replica.open(data, identity=identity) as ops:
        late = m.add("after the revocation")
        ops.sync_apply(m.sync_changes(ops.sync_summary()))
    rev = authority.revoke(mallory.credential.id, at_ms=NOW + 1_000, reason="stolen")
    raw = tmp_path / "mallory.rev"
    raw.write_bytes(rev.to_bytes())
    pem = tmp_path / "mallory.pem"
    pem.write_bytes(b"-----BEGIN MEMMESH REVOCATION-----\n" + base64.encodebytes(
        rev.to_bytes()) + b"-----END MEMMESH REVOCATION-----\n")

    code, out, _ = _run(capsys, "revocation", "add", "--data", str(data), "--credential",
                        str(cred), str(pem))
    assert code == 0 and "added" in out
    code, out, _ = _run(capsys, "revocation", "add", "--data", str(data), "--authority",
                        str(public), str(raw))
    assert code == 0 and "already held" in out
    code, out, _ = _run(capsys, "revocation", "list", "--data", str(data), "--credential",
                        str(cred))
    assert out.split() == [mallory.credential.id.hex(), str(NOW + 1_000), "stolen"]

    code, out, _ = _run(capsys, "audit", "--data", str(data), "--credential", str(cred),
                        "--hide")
    finding, summary = out.strip().splitlines()
    assert code == 0 and finding.startswith(f"revoked {late} ") and "hidden" in finding
    assert "replica=mallory" in finding and "1 revoked" in summary
    with Replica.open(data) as plain:
        assert plain.get(late) is None  # hidden on this replica

    forged = Authority.create("forger").revoke(mallory.credential.id, at_ms=0)
    other = tmp_path / "forged.rev"
    other.write_bytes(forged.to_bytes())
    code, _, err = _run(capsys, "revocation", "add", "--data", str(data), "--credential",
                        str(cred), str(other))
    assert code == 2 and "not signed by this authority" in err
    code, _, err = _run(capsys, "audit", "--data", str(tmp_path / "none"), "--credential",
                        str(cred))
    assert code != 0 and "no memmesh replica" in err

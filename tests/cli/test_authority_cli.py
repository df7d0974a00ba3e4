"""``memmesh authority`` (init, issue, revoke, show) and ``memmesh node --credential``, as
an operator runs them: real processes, files on disk, mistakes as one line, exit 2."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import MEMMESH, memmesh, wait_until

from memmesh.trust import Authority, AuthorityPublic, Grant, MemberIdentity, Revocation


def _ok(*argv: str) -> str:
    done = memmesh(*argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_init_issue_show_and_revoke_make_files_an_operator_can_read(tmp_path: Path) -> None:
    key, pub = tmp_path / "issuer.key", tmp_path / "issuer.pub"
    out = _ok("authority", "init", "--out", str(key), "--name", "acme")
    assert "OFFLINE" in out and (key.stat().st_mode & 0o777) == 0o600 and pub.is_file()
    authority = Authority.load(key)
    assert AuthorityPublic.load(pub) == authority.public

    cred = tmp_path / "alice.cred"
    _ok("authority", "issue", "--authority", str(key), "--replica-id", "alice-laptop",
        "--read", "users=alice,bob", "--read", "apps=crm;users=-", "--write", "users=alice",
        "--roles", "lead", "--actors", "planner,writer", "--expires", "12h", "--out", str(cred))
    assert (cred.stat().st_mode & 0o777) == 0o600
    member = MemberIdentity.load(cred)
    c = member.credential
    assert c.replica_id == "alice-laptop" and c.roles == {"lead"}
    assert set(c.read) == {Grant.parse("users=alice,bob"), Grant.parse("apps=crm;users=-")}
    assert c.write == (Grant.parse("users=alice"),) and c.actors == {"planner", "writer"}
    assert abs(c.expires_ms - time.time() * 1000 - 12 * 3_600_000) < 600_000
    c.verify(authority.public)

    shown = _ok("authority", "show", str(cred), str(key), str(pub)).splitlines()
    assert len(shown) == 3
    assert "'alice-laptop'" in shown[0]
    assert "read users=alice,bob | apps=crm;users=-; write users=alice; roles lead" in shown[0]
    assert "SECRET" in shown[1] and "'acme'" in shown[2]

    revoked = tmp_path / "alice.revoked"
    _ok("authority", "revoke", "--authority", str(key), "--credential", str(cred), "--at",
        "1700000000000", "--reason", "laptop stolen", "--out", str(revoked))
    rev = Revocation.load(revoked)
    rev.verify(authority.public)
    assert rev.credential_id == c.id and rev.revoked_at_ms == 1_700_000_000_000
    assert "laptop stolen" in _ok("authority", "show", str(revoked))
    by_id = tmp_path / "by-id.revoked"
    _ok("authority", "revoke", "--authority", str(key), "--id", c.id.hex(), "--out",
        str(by_id))
    assert Revocation.load(by_id).credential_id == c.id


@pytest.mark.parametrize(("argv", "words"), [
    (("authority",), "needs a command"),
    (("authority", "issue", "--authority", "{dir}/missing.key", "--replica-id", "x",
      "--read", "all", "--out", "{dir}/x.cred"), "missing.key"),
    (("authority", "issue", "--authority", "{dir}/issuer.key", "--replica-id", "x",
      "--read", "people=alice", "--out", "{dir}/x.cred"), "bad grant part"),
    (("authority", "issue", "--authority", "{dir}/issuer.key", "--replica-id", "x",
      "--read", "all", "--expires", "3y", "--out", "{dir}/x.cred"), "not a duration"),
    (("authority", "issue", "--authority", "{dir}/issuer.key", "--replica-id", "x",
      "--out", "{dir}/x.cred"), "at least one --read or --write"),
    (("authority", "issue", "--authority", "{dir}/issuer.pub", "--replica-id", "x",
      "--read", "all", "--out", "{dir}/x.cred"), "not a usable authority key file"),
    (("authority", "init", "--out", "{dir}/issuer.key"), "refusing to overwrite"),
    (("authority", "revoke", "--authority", "{dir}/issuer.key", "--id", "abc",
      "--out", "{dir}/r"), "not a credential id"),
    (("authority", "revoke", "--authority", "{dir}/issuer.key", "--out", "{dir}/r"),
     "--credential FILE or --id HEX"),
    (("authority", "show", "{dir}/issuer.nothing"), "no such file"),
    (("authority", "show", "{dir}/garbage"), "not a memmesh credential"),
    (("node", "--data", "{dir}/d", "--credential", "{dir}/issuer.key"), "--credential"),
    (("node", "--data", "{dir}/d", "--credential", "{dir}/a.cred", "--key-file", "{dir}/k"),
     "drop --key-file"),
])
def test_every_mistake_is_one_line_and_exit_status_2(tmp_path: Path, argv: tuple[str, ...],
                                                      words: str) -> None:
    authority = Authority.create("acme")
    authority.save(tmp_path / "issuer.key")
    authority.public.save(tmp_path / "issuer.pub")
    (tmp_path / "garbage").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                       b"-----END CERTIFICATE-----\n")
    now = int(time.time() * 1000)
    authority.issue("a", read=(Grant(),), expires_ms=now + 3_600_000, now_ms=now).save(
        tmp_path / "a.cred")
    done = memmesh(*(a.replace("{dir}", str(tmp_path)) for a in argv))
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "x.cred").exists()


def _start(data: Path, *argv: str) -> tuple[subprocess.Popen[bytes], int]:
    """``memmesh node --data DATA ...`` (no mDNS), once it prints READY."""
    log = open(data.with_suffix(".log"), "ab")  # noqa: SIM115
    proc = subprocess.Popen([MEMMESH, "node", "--data", str(data), "--no-mdns",
                             "--interval", "0.2", *argv], stdout=subprocess.PIPE, stderr=log,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.stdout is not None
    line, end = b"", time.monotonic() + 60
    while not line.endswith(b"\n"):
        assert time.monotonic() < end and proc.poll() is None, \
            data.with_suffix(".log").read_text()[-2000:]
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line += os.read(proc.stdout.fileno(), 1)
    return proc, int(line.split()[1])


def test_two_nodes_on_credential_files_sync_what_their_grants_allow(tmp_path: Path) -> None:
    key = tmp_path / "issuer.key"
    _ok("authority", "init", "--out", str(key))
    for rid, read in (("alice-laptop", "all"), ("bob-laptop", "users=bob")):
        _ok("authority", "issue", "--authority", str(key), "--replica-id", rid, "--read",
            read, "--write", "all", "--out", str(tmp_path / f"{rid}.cred"))
    a, b = tmp_path / "a", tmp_path / "b"
    procs = []
    try:
        proc, port = _start(a, "--credential", str(tmp_path / "alice-laptop.cred"))
        procs.append(proc)
        proc, _ = _start(b, "--credential", str(tmp_path / "bob-laptop.cred"), "--seed",
                         f"127.0.0.1:{port}")
        procs.append(proc)
        as_a = ("--data", str(a), "--credential", str(tmp_path / "alice-laptop.cred"))
        as_b = ("--data", str(b), "--credential", str(tmp_path / "bob-laptop.cred"))
        _ok("add", *as_a, "--user-id", "alice", "CANARY of alice")
        _ok("add", *as_a, "--user-id", "bob", "for bob")
        wait_until(lambda: "for bob" in memmesh("list", *as_b).stdout, 60,
                   "bob's memory on bob's laptop")
        assert "alice-laptop" in (a.with_suffix(".log").read_text()
                                  + b.with_suffix(".log").read_text())
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    listed = memmesh("list", *as_b)
    assert listed.returncode == 0 and "for bob" in listed.stdout
    assert "CANARY" not in listed.stdout
    assert "credentials of" in b.with_suffix(".log").read_text()


def test_the_demo_runs_its_agents_on_credentials_it_issues() -> None:
    out = _ok("demo", "--no-semantic")
    assert "authority 'demo-fleet' made in" in out and "runs on its own credential" in out
    assert "TLS 1.3 on member credentials" in out
    assert "both conflicts resolved and converged" in out


def test_memory_commands_on_a_credential_sign_encrypt_and_keep_to_the_grants(
        tmp_path: Path) -> None:
    key, cred, data = tmp_path / "issuer.key", tmp_path / "alice.cred", tmp_path / "d"
    _ok("authority", "init", "--out", str(key))
    _ok("authority", "issue", "--authority", str(key), "--replica-id", "alice-laptop",
        "--read", "users=alice", "--write", "users=alice", "--expires", "1d", "--out",
        str(cred))
    mid = _ok("add", "--data", str(data), "--credential", str(cred), "--user-id", "alice",
              "canary-c4e1 alice's secret").strip()
    assert "canary-c4e1" in _ok("get", "--data", str(data), "--credential", str(cred), mid)
    denied = memmesh("add", "--data", str(data), "--credential", str(cred), "--user-id",
                     "bob", "for bob")
    assert denied.returncode != 0 and len(denied.stderr.strip().splitlines()) == 1
    assert "no write grant" in denied.stderr
    locked = memmesh("list", "--data", str(data))
    assert locked.returncode != 0 and "--credential" in locked.stderr
    assert len(locked.stderr.strip().splitlines()) == 1
    assert not any(b"canary-c4e1" in p.read_bytes() for p in data.rglob("*") if p.is_file())


def test_a_renewed_credential_opens_the_replica_its_predecessor_encrypted(
        tmp_path: Path) -> None:
    key, data = tmp_path / "issuer.key", tmp_path / "d"
    old, new = tmp_path / "alice.cred", tmp_path / "alice-2027.cred"
    _ok("authority", "init", "--out", str(key))
    issue = ("authority", "issue", "--authority", str(key), "--replica-id", "alice-laptop",
             "--read", "users=alice", "--write", "users=alice")
    _ok(*issue, "--expires", "1d", "--out", str(old))
    mid = _ok("add", "--data", str(data), "--credential", str(old), "--user-id", "alice",
              "kept across renewals").strip()
    _ok(*issue, "--expires", "90d", "--renew", str(old), "--out", str(new))
    assert MemberIdentity.load(new).credential.id != MemberIdentity.load(old).credential.id
    assert "kept across renewals" in _ok("get", "--data", str(data), "--credential",
                                         str(new), mid)
    wrong = memmesh(*issue[:5], "bob-laptop", *issue[6:], "--renew", str(old), "--out",
                    str(tmp_path / "bob.cred"))
    assert wrong.returncode == 2 and "cannot renew" in wrong.stderr

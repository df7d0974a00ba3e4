"""Encryption at rest and crypto-shredding: raw byte scans of every file a replica (or
its backup) leaves on disk, before and after ``forget``, on the writer and on a peer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from at_rest_helpers import files_holding, tree_digest
from storage_helpers import sync_once, ticking

from memmesh.storage import AtRestKeyError, Replica, at_rest_key_file
from memmesh.storage._digest import state_key

CANARY = "canary-7f3a9c-the-launch-code-is-swordfish"
META_CANARY = "meta-canary-41d2"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
LOCKS = ("lock.mdb", "replica.lock")


def _open(path: Path, key: bytes | None = KEY, **options: object) -> Replica:
    return Replica.open(path, at_rest_key=key, clock=ticking(), **options)  # type: ignore[arg-type]


def _churn(replica: Replica, memory_id: str, rounds: int = 20) -> None:
    """Updates and other writes, so that LMDB frees pages holding older copies."""
    for i in range(rounds):
        replica.update(memory_id, f"{CANARY} revision {i}", metadata={"m": META_CANARY})
        replica.add(f"filler {i}", user_id="bob")


def _content(root: Path) -> dict[str, bytes]:
    return {name: data for name, data in tree_digest(root).items() if name not in LOCKS}


def test_the_scan_finds_a_forgotten_canary_in_an_unencrypted_replica(tmp_path: Path) -> None:
    with _open(tmp_path / "plain", key=None) as r:
        memory_id = r.add(CANARY, user_id="alice", metadata={"m": META_CANARY})
        _churn(r, memory_id)
        r.forget(memory_id)
        assert r.get(memory_id) is None
    assert files_holding(tmp_path / "plain", CANARY.encode())  # LMDB's freed pages


def test_an_encrypted_replica_holds_no_text_or_metadata_in_plaintext(tmp_path: Path) -> None:
    with _open(tmp_path / "r") as r:
        memory_id = r.add(CANARY, user_id="alice", metadata={"m": META_CANARY})
        _churn(r, memory_id)
        r.aux_put("notes", b"k", f"aux {CANARY}".encode())
        record = r.get(memory_id)
        assert record is not None and CANARY in record.text
        assert record.versions[0].metadata == {"m": META_CANARY}
        assert r.aux_get("notes", b"k") == f"aux {CANARY}".encode()
    for needle in (CANARY, META_CANARY, "filler", "swordfish"):
        assert files_holding(tmp_path / "r", needle.encode()) == {}, needle
    with _open(tmp_path / "r") as r:  # and it all reads back after a restart
        assert r.get(memory_id).text.startswith(CANARY)  # type: ignore[union-attr]
        assert len(r.list(user_id="bob")) == 20


def test_a_sealed_copy_left_in_a_freed_page_names_a_destroyed_key(tmp_path: Path) -> None:
    path = tmp_path / "r"
    with _open(path) as r:
        memory_id = r.add(CANARY, user_id="alice")
        with r._env.read() as txn:
            sealed = bytes(txn.txn.get(state_key(memory_id), db=txn.dbs["state"]))
        r.add("kept")
        r.forget(memory_id)
        assert r.get(memory_id) is None
        assert [e.op for e in r.history(memory_id)][-1:] == ["FORGET"]
    slot = int.from_bytes(sealed[1:9], "big")
    assert sealed[0] == 1 and sealed in (path / "data.mdb").read_bytes()  # still on disk
    assert (path / "keyslots").read_bytes()[64 * (slot + 1):64 * (slot + 2)] == bytes(64)
    with _open(path) as r:
        assert r.get(memory_id) is None
        assert [m.text for m in r.list()] == ["kept"]


def test_forget_zeroes_the_memorys_key_slot_and_a_later_memory_reuses_it(
        tmp_path: Path) -> None:
    slots = tmp_path / "r" / "keyslots"
    with _open(tmp_path / "r") as r:
        first = r.add(CANARY, user_id="alice")
        r.add("kept", user_id="bob")
        size = slots.stat().st_size
        live = slots.read_bytes()
        r.forget(first)
        after = slots.read_bytes()
        changed = [i for i in range(64, size, 64) if live[i:i + 64] != after[i:i + 64]]
        assert len(changed) == 1 and after[changed[0]:changed[0] + 64] == bytes(64)
        r.add("another", user_id="bob")
        assert slots.stat().st_size == size  # the freed slot was taken again
        assert after[changed[0]:changed[0] + 64] != slots.read_bytes()[changed[0]:changed[0] + 64]


def test_a_peer_that_merged_the_canary_and_then_its_forget_holds_no_copy(
        tmp_path: Path) -> None:
    with _open(tmp_path / "a") as a, _open(tmp_path / "b", key=OTHER_KEY) as b:
        memory_id = a.add(CANARY, user_id="alice", metadata={"m": META_CANARY})
        _churn(a, memory_id, rounds=5)
        sync_once(a, b)
        assert b.get(memory_id).text.startswith(CANARY)  # type: ignore[union-attr]
        for i in range(10):  # the peer's own churn frees its pages too
            b.add(f"peer filler {i}")
        a.forget(memory_id)
        sync_once(a, b)
        assert b.get(memory_id) is None
        sync_once(b, a)
        assert a.state_digest() == b.state_digest()
    for side in ("a", "b"):
        assert files_holding(tmp_path / side, CANARY.encode()) == {}
        assert files_holding(tmp_path / side, META_CANARY.encode()) == {}


def test_a_backup_taken_after_a_forget_cannot_decrypt_the_forgotten_memory(
        tmp_path: Path) -> None:
    with _open(tmp_path / "r") as r:
        early = r.add(CANARY, user_id="alice")
        kept = r.add("still here", user_id="bob")
        r.backup(tmp_path / "before")
        r.forget(early)
        r.backup(tmp_path / "after")
    assert files_holding(tmp_path / "after", CANARY.encode()) == {}
    assert sorted(os.listdir(tmp_path / "after")) == ["data.mdb", "keyslots"]
    with _open(tmp_path / "after") as copy:
        assert copy.get(early) is None
        assert copy.get(kept).text == "still here"  # type: ignore[union-attr]
    with _open(tmp_path / "before") as copy:  # a backup holds what was live when taken
        assert copy.get(early).text == CANARY  # type: ignore[union-attr]


def test_an_expired_memory_loses_its_key_when_it_is_collected(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "r", at_rest_key=KEY, clock=clock) as r:
        memory_id = r.add(CANARY, ttl=1.0)
        live = (tmp_path / "r" / "keyslots").read_bytes()
        clock.advance(5_000)
        assert r.collect_expired() == 1
        assert r.get(memory_id) is None
    assert (tmp_path / "r" / "keyslots").read_bytes()[64:] == bytes(len(live) - 64)


@pytest.mark.parametrize("key", [None, OTHER_KEY], ids=["no-key", "wrong-key"])
def test_an_encrypted_replica_refuses_a_missing_or_wrong_key_and_changes_nothing(
        tmp_path: Path, key: bytes | None) -> None:
    with _open(tmp_path / "r") as r:
        r.add(CANARY)
    before = _content(tmp_path / "r")
    with pytest.raises(AtRestKeyError):
        _open(tmp_path / "r", key=key)
    assert _content(tmp_path / "r") == before


def test_a_plaintext_replica_refuses_a_key_and_changes_nothing(tmp_path: Path) -> None:
    with _open(tmp_path / "r", key=None) as r:
        r.add("plain")
    before = _content(tmp_path / "r")
    with pytest.raises(AtRestKeyError, match="plaintext replica"):
        _open(tmp_path / "r")
    assert _content(tmp_path / "r") == before
    with _open(tmp_path / "r", key=None) as r:
        assert [m.text for m in r.list()] == ["plain"]


def test_a_key_that_is_not_32_bytes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AtRestKeyError):
        _open(tmp_path / "r", key=b"short")
    assert not (tmp_path / "r").exists()


def test_an_encrypted_replica_whose_key_slot_file_is_gone_is_refused(tmp_path: Path) -> None:
    with _open(tmp_path / "r") as r:
        r.add(CANARY)
    (tmp_path / "r" / "keyslots").unlink()
    for key in (None, KEY):
        with pytest.raises(AtRestKeyError):
            _open(tmp_path / "r", key=key)


def test_the_key_file_is_created_once_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "at-rest.key"
    key = at_rest_key_file(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert at_rest_key_file(path) == key
    path.write_bytes(b"not a key")
    with pytest.raises(AtRestKeyError):
        at_rest_key_file(path)


_WRITER = """
import sys
from memmesh.storage import Replica
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Replica.open(path, at_rest_key=bytes(range(32))) as r:
    for i in range(count):
        r.add(f"{name} memory {i}", user_id=name)
"""


def test_processes_writing_one_encrypted_replica_never_share_a_key_slot(
        tmp_path: Path) -> None:
    path = tmp_path / "r"
    with _open(path) as r:
        r.add("created first")
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, "150"])
                 for name in ("p1", "p2")]
        mine = [r.add(f"parent memory {i}", user_id="parent") for i in range(150)]
        assert [p.wait(timeout=300) for p in procs] == [0, 0]
        r.forget(mine[0])
        for name in ("p1", "p2", "parent"):  # every memory opens with its own data key
            texts = sorted(m.text for m in r.list(user_id=name))
            assert len(texts) == (149 if name == "parent" else 150)
            assert all(t.startswith(f"{name} memory") for t in texts)
    with _open(path) as r:
        assert len(r.list()) == 450
    assert (path / "keyslots").stat().st_size == 64 * (1 + 451)

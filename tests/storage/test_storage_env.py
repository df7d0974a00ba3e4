"""The LMDB environment: durability under SIGKILL, map growth, several processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_helpers import ticking

from memmesh.crdt import Dot
from memmesh.storage import Replica, ReplicaIdMismatchError

HERE = Path(__file__).parent


def _child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash"
    rng = random.Random(1234)
    acked: dict[str, str | None] = {}
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(path),
                                 str(round_)], stdout=subprocess.PIPE, env=_child_env(),
                                text=True)
        assert proc.stdout is not None
        target = rng.randint(1, 400)
        lines = 0
        deadline = time.monotonic() + 60
        while lines < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines += 1
            parts = line.rstrip("\n").split(" ", 2)
            if parts[0] == "A":
                acked[parts[1]] = None
            else:
                acked[parts[1]] = parts[2]
        time.sleep(rng.uniform(0, 0.03))  # land the kill at a random point of a write
        proc.send_signal(signal.SIGKILL)
        # lines printed before the kill landed were acknowledged too
        rest = proc.stdout.read()
        proc.wait()
        for line in rest.splitlines():
            parts = line.split(" ", 2)
            if len(parts) >= 2:
                acked[parts[1]] = None if parts[0] == "A" else parts[2]
        assert lines > 0
        with Replica.open(path) as replica:
            for mid, text in acked.items():
                record = replica.get(mid)
                assert record is not None, f"acknowledged write {mid} lost in round {round_}"
                if text is not None:
                    # this update or a later one of the same memory is what stands
                    assert record.text.startswith("update") or record.text == text
            replica.state_digest()
    assert len(acked) > 50


def test_map_grows_instead_of_failing(tmp_path: Path) -> None:
    small = 256 * 1024
    with Replica.open(tmp_path / "g", map_size=small, clock=ticking()) as r:
        for i in range(300):
            r.add(f"memory {i} " + "y" * 1000)
        with r.batch():
            for i in range(300):
                r.add(f"batched {i} " + "z" * 1000)
        assert r.stats()["map_size"] > small
        assert len(r.list()) == 600


def test_replica_id_is_created_once_and_persisted(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "p") as r:
        rid = r.replica_id
        mid = r.add("kept")
    with Replica.open(tmp_path / "p") as r:
        assert r.replica_id == rid and r.get(mid) is not None
    with Replica.open(tmp_path / "p", replica_id=rid) as r:
        assert r.replica_id == rid
    with pytest.raises(ReplicaIdMismatchError):
        Replica.open(tmp_path / "p", replica_id="someone-else")


def test_a_second_process_sees_the_first_ones_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    with Replica.open(path) as r:
        mine = r.add("from the parent", user_id="u")
        seq = r.journal_seq()
        script = ("import sys\nfrom memmesh.storage import Replica\n"
                  "with Replica.open(sys.argv[1]) as r:\n"
                  "    assert r.get(sys.argv[2]).text == 'from the parent'\n"
                  "    for i in range(20):\n"
                  "        r.add(f'child {i}', user_id='u')\n"
                  "    print(r.replica_id, r.origin)\n")
        out = subprocess.run([sys.executable, "-c", script, str(path), mine], check=True,
                             capture_output=True, text=True, env=_child_env(), timeout=120)
        rid, child_origin = out.stdout.split()
        assert rid == r.replica_id
        assert len(r.list(user_id="u")) == 21
        changes = r.changes_since(seq)
        assert len(changes.changes) == 20 and all(c.local for c in changes.changes)
        # each process mints under its own origin: a new local write reuses none of the
        # child's dots, and every dot of the child is one of its origin's first 20
        child_dots = {rec.versions[0].dot for rec in r.list(user_id="u") if rec.id != mine}
        assert child_dots == {Dot(child_origin, n) for n in range(1, 21)}
        new = r.add("after the child")
        assert r.origin != child_origin
        assert r.get(new).versions[0].dot == Dot(r.origin, 2)  # type: ignore[union-attr]


def test_write_behind_mode_keeps_writes_after_flush(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "wb", durable=False) as r:
        ids = [r.add(f"m{i}") for i in range(10)]
        r.flush()
    with Replica.open(tmp_path / "wb") as r:
        assert all(r.get(i) is not None for i in ids)


def test_aux_store_is_local_only(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "x") as a, Replica.open(tmp_path / "y") as b:
        digest = a.state_digest()
        a.aux_put("embeddings", b"hash", b"\x00\x01vector")
        assert a.aux_get("embeddings", b"hash") == b"\x00\x01vector"
        assert a.aux_get("embeddings", b"other") is None
        assert a.state_digest() == digest
        assert b"vector" not in a.sync_changes(b.sync_summary())

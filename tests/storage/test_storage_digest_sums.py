"""The digest's bucket sums are read in one walk over the stored ones, equal to reading
each of the 256 buckets (storage/_digest.py): every summary and digest reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import ticking

from memmesh.storage import Replica
from memmesh.storage import _digest as digest
from memmesh.storage._env import Txn


def _one_by_one(txn: Txn) -> list[bytes]:
    pending: dict[int, int] = txn.scratch.get("digest", {})
    return [digest._sum(txn, b, pending.get(b, 0)) for b in range(digest.BUCKETS)]


def test_bucket_sums_equal_the_per_bucket_reads_with_pending_deltas(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra", clock=ticking()) as a:
        for i in range(40):
            a.add(f"m{i}", user_id=f"u{i % 3}")
        with a._env.read() as txn:
            stored = digest.bucket_sums(txn)
            assert stored == _one_by_one(txn)
            assert digest.state_root(txn) == digest.root(stored)
            assert sum(s != bytes(32) for s in stored) > 10

        def write(txn: Txn) -> None:
            skey = digest.state_key("not-yet-committed")
            digest.note_change(txn, skey, None, b"state bytes")
            assert digest.bucket_sums(txn) == _one_by_one(txn) != stored
            assert digest.state_root(txn) == digest.root(_one_by_one(txn))

        a._env.write(write)


def test_a_digest_reads_the_stored_sums_not_all_256_buckets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra", clock=ticking()) as a:
        a.add("one memory", user_id="u1")
        expected = a.state_digest()
        gets: list[tuple[str, bytes]] = []
        real_get = Txn.get

        def counting_get(self: Txn, db: str, key: bytes) -> bytes | None:
            gets.append((db, key))
            return real_get(self, db, key)

        monkeypatch.setattr(Txn, "get", counting_get)
        assert a.state_digest() == expected
        assert len([k for db, k in gets if db == "meta" and k.startswith(b"dg:")]) < 8

"""Parking an environment (storage/_env.py ``Env.park``): its files close, the object
stays, and the next read or write reopens it seeing everything committed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memmesh.storage import Replica


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_parked_replica_holds_no_file_descriptors(tmp_path: Path) -> None:
    before = _open_fds()
    with Replica.open(tmp_path / "r", replica_id="a", durable=False) as replica:
        assert _open_fds() > before
        replica._env.park()
        assert replica._env.parked
        assert _open_fds() == before


def test_a_parked_replica_reopens_on_the_next_read_and_write(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="a", durable=False) as replica:
        first = replica.add("before parking", user_id="u")
        digest = replica.state_digest()
        replica._env.park()
        record = replica.get(first)
        assert record is not None and record.text == "before parking"
        assert replica.state_digest() == digest
        replica._env.park()
        second = replica.add("after parking", user_id="u")
        replica._env.park()
        assert {r.id for r in replica.list(user_id="u")} == {first, second}
        # the same writing lifetime goes on: one origin for both writes
        origins = {v.dot.replica for m in (first, second)
                   for v in replica.get(m).versions}  # type: ignore[union-attr]
        assert len(origins) == 1


def test_a_parked_replica_keeps_its_grown_map(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="a", durable=False,
                      map_size=1 << 20) as replica:
        with replica.batch():
            for i in range(400):
                replica.add(f"memory {i} " + "x" * 2000, user_id="u")
        grown = replica._env.map_size
        assert grown > 1 << 20
        replica._env.park()
        assert replica._env.map_size == grown
        assert len(replica.list(user_id="u", limit=1000)) == 400
        assert replica._env.map_size == grown


def test_parking_inside_a_batch_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="a", durable=False) as replica:
        with replica.batch():
            memory_id = replica.add("in a batch", user_id="u")
            with pytest.raises(RuntimeError):
                replica._env.park()
        assert not replica._env.parked
        assert replica.get(memory_id) is not None


def test_closing_a_parked_replica_is_final(tmp_path: Path) -> None:
    replica = Replica.open(tmp_path / "r", replica_id="a", durable=False)
    replica._env.park()
    replica.close()
    reopened = Replica.open(tmp_path / "r", replica_id="a", durable=False)
    reopened.close()

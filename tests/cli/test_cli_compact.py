"""``memmesh compact DIR``: a forgotten text leaves an unencrypted replica's disk, and
the command refuses while any process has the replica open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import memmesh

from memmesh.storage import Replica, ReplicaBusyError, compact

CANARY = "compact-canary-5e1b-the-safe-combination"
_HOLDER = """
import sys, time
from memmesh.storage import Replica
with Replica.open(sys.argv[1]):
    print("open", flush=True)
    sys.stdin.read()
"""


def _forgotten_canary(path: Path) -> str:
    with Replica.open(path) as r:
        memory_id = r.add(CANARY, user_id="alice")
        for i in range(20):
            r.update(memory_id, f"{CANARY} {i}")
            r.add(f"filler {i}")
        kept = r.add("kept", user_id="bob")
        r.forget(memory_id)
    return kept


def test_compact_drops_a_forgotten_text_that_freed_pages_still_held(tmp_path: Path) -> None:
    data = tmp_path / "r"
    kept = _forgotten_canary(data)
    assert CANARY.encode() in (data / "data.mdb").read_bytes()
    done = memmesh("compact", str(data))
    assert done.returncode == 0, done.stderr
    assert "compacted" in done.stderr
    for path in data.rglob("*"):
        assert not path.is_file() or CANARY.encode() not in path.read_bytes(), path
    with Replica.open(data) as r:  # the replica is whole after the swap
        assert r.get(kept).text == "kept"  # type: ignore[union-attr]
        assert len(r.list()) == 21


def test_compact_refuses_while_another_process_has_the_replica_open(tmp_path: Path) -> None:
    data = tmp_path / "r"
    _forgotten_canary(data)
    before = (data / "data.mdb").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(data)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        refused = memmesh("compact", str(data))
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and "open in another process" in refused.stderr
        assert (data / "data.mdb").read_bytes() == before
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert memmesh("compact", str(data)).returncode == 0


def test_compact_refuses_a_replica_open_in_this_process(tmp_path: Path) -> None:
    data = tmp_path / "r"
    _forgotten_canary(data)
    with Replica.open(data), pytest.raises(ReplicaBusyError):
        compact(data)


def test_compact_refuses_a_directory_without_a_replica(tmp_path: Path) -> None:
    refused = memmesh("compact", str(tmp_path))
    assert refused.returncode == 1 and "no replica" in refused.stderr

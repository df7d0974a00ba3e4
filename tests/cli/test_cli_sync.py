"""``memmesh add/update --sync push|pull`` stores the write's delivery mode."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import memmesh

from memmesh.storage import Replica


def test_add_and_update_store_the_sync_mode_a_node_reads(tmp_path: Path) -> None:
    data = tmp_path / "r"
    done = memmesh("add", "project state", "--sync", "pull", "--data", str(data))
    assert done.returncode == 0, done.stderr
    memory_id = done.stdout.strip()
    done = memmesh("update", memory_id, "edited", "--sync", "push", "--data", str(data))
    assert done.returncode == 0, done.stderr
    with Replica.open(data) as r:
        assert [c.sync for c in r.changes_since(0).changes] == ["pull", "push"]


def test_an_unknown_sync_mode_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "r"
    done = memmesh("add", "never", "--sync", "later", "--data", str(data))
    assert done.returncode == 2 and "--sync" in done.stderr
    if data.exists():
        with Replica.open(data) as r:
            assert r.list() == []

"""The write fence: while fenced, every local mutator refuses and changes nothing;
sync goes on; unfencing restores writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from memmesh.crdt import Dot, InvalidArgumentError
from memmesh.storage import Replica, WritesFencedError

REASON = "this replica's clock is 3600 s ahead of its peers'; fix the clock, then reopen"


def test_every_local_mutator_refuses_while_fenced_and_changes_nothing(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as a:
        mid = a.add("kept")
        a.set_add("tags", "x")
        before = a.state_digest()
        a.fence_writes(REASON)
        assert a.write_fence == REASON
        calls = [
            lambda: a.add("new"),
            lambda: a.update(mid, "changed"),
            lambda: a.record_noop(mid),
            lambda: a.delete(mid),
            lambda: a.forget(mid),
            lambda: a.resolve(mid, "r", resolver="t", inputs=(Dot("z", 1),)),
            lambda: a.set_add("tags", "y"),
            lambda: a.set_remove("tags", "x"),
        ]
        for call in calls:
            with pytest.raises(WritesFencedError, match="clock is 3600 s ahead"):
                call()
        assert a.state_digest() == before
        assert a.get(mid) is not None and a.get(mid).text == "kept"  # type: ignore[union-attr]


def test_sync_goes_on_while_fenced_and_unfencing_restores_writes(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as a, Replica.open(tmp_path / "b") as b:
        mid = b.add("from b")
        a.fence_writes(REASON)
        a.sync_apply(b.sync_changes(a.sync_summary()))
        assert a.get(mid) is not None
        a.unfence_writes()
        assert a.write_fence is None
        a.update(mid, "from a")
        assert a.get(mid).text == "from a"  # type: ignore[union-attr]


def test_a_fence_needs_a_reason(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as a:
        for bad in ("", "   ", None):
            with pytest.raises(InvalidArgumentError):
                a.fence_writes(bad)  # type: ignore[arg-type]
        assert a.write_fence is None

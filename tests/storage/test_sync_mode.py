"""Each local write's delivery mode (``sync="push"|"pull"``) rides on its journal entry,
is remembered per memory on the replica that wrote it, and is validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from storage_helpers import sync_pair, ticking

from memmesh.crdt import InvalidArgumentError, pack_canonical
from memmesh.storage import Replica
from memmesh.storage import _journal as journal


def modes(r: Replica, since: int = 0) -> list[tuple[str, bool, str | None]]:
    return [(c.memory_id, c.local, c.sync) for c in r.changes_since(since).changes]


def test_a_write_records_its_mode_and_later_writes_without_one_keep_it(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        plain = r.add("no mode named")
        prio = r.add("urgent", priority=True)
        pulled = r.add("project state", sync="pull")
        r.update(pulled, "project state, edited")
        r.update(pulled, "project state, announced", sync="push")
        r.delete(pulled)
        assert modes(r) == [(plain, True, None), (prio, True, None), (pulled, True, "pull"),
                            (pulled, True, "pull"), (pulled, True, "push"),
                            (pulled, True, "push")]


def test_delete_and_resolve_take_a_mode_too(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        mid = r.add("one")
        record = r.get(mid)
        assert record is not None
        seq = r.journal_seq()
        r.resolve(mid, "one, resolved", resolver="test", inputs=(record.versions[0].dot,),
                  sync="pull")
        r.delete(mid, sync="push")
        assert modes(r, seq) == [(mid, True, "pull"), (mid, True, "push")]


@pytest.mark.parametrize("bad", ["later", "PUSH", "", 1, True, b"pull"])
def test_a_bad_mode_is_a_typed_error_and_writes_nothing(tmp_path: Path, bad: Any) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        mid = r.add("kept", sync="pull")
        record = r.get(mid)
        assert record is not None
        seq, digest = r.journal_seq(), r.state_digest()
        calls = [
            lambda: r.add("never stored", sync=bad),
            lambda: r.update(mid, "never stored", sync=bad),
            lambda: r.delete(mid, sync=bad),
            lambda: r.resolve(mid, "never stored", resolver="t",
                              inputs=(record.versions[0].dot,), sync=bad),
        ]
        for call in calls:
            with pytest.raises(InvalidArgumentError):
                call()
        assert (r.journal_seq(), r.state_digest()) == (seq, digest)
        assert [m.id for m in r.list()] == [mid]
        r.update(mid, "still pull")  # the remembered mode was not overwritten
        assert modes(r, seq) == [(mid, True, "pull")]


def test_changes_merged_from_a_peer_carry_no_mode_and_the_mode_stays_with_its_writer(
        tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", clock=clock, durable=False) as a, \
            Replica.open(tmp_path / "b", clock=clock, durable=False) as b:
        mid = a.add("pulled", sync="pull")
        seq = b.journal_seq()
        sync_pair(a, b)
        assert modes(b, seq) == [(mid, False, None)]
        b.update(mid, "edited on b")  # b remembers no mode for it: the node default
        assert modes(b, seq)[-1] == (mid, True, None)


def test_journal_entries_written_before_the_mode_field_still_read(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        old = [("k3", True, False), ("k4", True, True, ("app", "u", None, None))]

        def write_old(txn: Any) -> None:
            for seq, entry in enumerate(old, start=1):
                txn.put("journal", seq.to_bytes(8, "big"), pack_canonical(entry))
            txn.set_counter(b"jseq", len(old))

        r._env.write(write_old)
        changes = r.changes_since(0).changes
        assert [(c.memory_id, c.priority, c.scope, c.sync) for c in changes] == [
            ("k3", False, None, None), ("k4", True, ("app", "u", None, None), None)]


def test_an_expired_memory_leaves_no_remembered_mode_behind(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "r", clock=clock, durable=False) as r:
        mid = r.add("short-lived", sync="pull", ttl=1)

        def remembered(txn: Any) -> object:
            return txn.get("aux", journal._mode_key(mid))

        assert r._env.write(remembered) == b"pull"
        clock.advance(5_000)
        assert r.collect_expired() == 1
        assert r._env.write(remembered) is None

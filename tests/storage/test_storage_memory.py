"""The memory model of a replica: semantics of each operation, locally and across sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import sync_once, sync_pair, ticking

from memmesh.crdt import ConflictError, InvalidArgumentError, Timestamp
from memmesh.storage import Replica, UnknownMemoryError


@pytest.fixture
def clock() -> ticking:
    return ticking()


@pytest.fixture
def pair(tmp_path: Path, clock: ticking):  # type: ignore[no-untyped-def]
    a = Replica.open(tmp_path / "a", replica_id="ra", clock=clock)
    b = Replica.open(tmp_path / "b", replica_id="rb", clock=clock)
    yield a, b
    a.close()
    b.close()


def test_forget_wins_over_a_concurrent_update_in_both_sync_orders(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("secret: the launch code is 1234", user_id="u")
    sync_pair(a, b)
    b.update(mid, "secret, edited: launch code 1234")  # concurrent with the forget
    assert a.forget(mid)
    sync_once(a, b)  # b receives the forget while holding its own update
    sync_once(b, a)  # a receives b's update after its forget
    for r in (a, b):
        assert r.get(mid) is None
        assert mid not in {m.id for m in r.list(user_id="u")}
        assert [e.op for e in r.history(mid)] == ["FORGET"]
        assert all(e.text is None for e in r.history(mid))
        with r._env.read() as txn:  # no byte of the text left in any sub-database
            for db in ("state", "history", "journal", "origin", "scope"):
                for k, v in txn.prefix(db, b""):
                    assert b"launch code" not in k + v
    assert a.state_digest() == b.state_digest()
    with pytest.raises(UnknownMemoryError):
        b.update(mid, "resurrect")


def test_delete_is_observed_remove_so_a_concurrent_update_survives(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("v1")
    sync_pair(a, b)
    assert a.delete(mid)
    b.update(mid, "v2 concurrent")
    sync_pair(a, b)
    assert a.get(mid).text == b.get(mid).text == "v2 concurrent"  # type: ignore[union-attr]
    assert a.delete(mid)
    sync_pair(a, b)
    assert a.get(mid) is None and b.get(mid) is None


def test_concurrent_updates_conflict_and_resolve_dominates_only_its_inputs(pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("base", app_id="app")
    sync_pair(a, b)
    a.update(mid, "from a", actor="alice")
    b.update(mid, "from b", actor="bob")
    sync_pair(a, b)
    record = a.get(mid)
    assert record is not None and record.conflicted
    with pytest.raises(ConflictError) as info:
        _ = record.text
    assert "from a" in str(info.value) and "from b" in str(info.value)
    assert [c.id for c in a.conflicts(app_id="app")] == [mid]
    inputs = tuple(v.dot for v in record.versions)
    c = Replica.open(tmp_path / "c", replica_id="rc", clock=a.clock)
    sync_once(a, c)
    c.update(mid, "from c, concurrent with the resolution")
    version = a.resolve(mid, "merged", resolver="test", inputs=inputs)
    assert version.op == "RESOLVE" and set(version.inputs) == set(inputs)
    sync_once(c, a)
    texts = sorted(v.text for v in a.get(mid).versions)  # type: ignore[union-attr]
    assert texts == ["from c, concurrent with the resolution", "merged"]
    c.close()


def test_update_with_same_text_is_a_replicated_noop_event(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("same")
    before = a.get(mid)
    a.update(mid, "same")
    a.record_noop(mid, actor="bot", role="dedupe", detail={"absorbed": "same."})
    assert a.get(mid) == before  # no new version
    assert [e.op for e in a.history(mid)] == ["ADD", "NOOP", "NOOP"]
    sync_pair(a, b)  # a NOOP is an event of the shared timeline: it replicates
    assert b.history(mid) == a.history(mid)
    last = b.history(mid)[-1]
    assert (last.actor, last.role, dict(last.detail)) == ("bot", "dedupe", {"absorbed": "same."})


def test_history_is_one_timeline_on_every_replica(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("one", actor="alice")
    a.update(mid, "two", actor="alice")
    sync_pair(a, b)
    b.delete(mid, actor="bob", role="lead")
    sync_pair(a, b)
    ha = a.history(mid)
    assert [(e.op, e.replica, e.actor) for e in ha] == \
        [("ADD", "ra", "alice"), ("UPDATE", "ra", "alice"), ("DELETE", "rb", "bob")]
    assert ha[-1].role == "lead"
    assert b.history(mid) == ha
    assert ha[1].text == "two" and all(e.context.vv for e in ha)
    assert [e.timestamp for e in ha] == sorted(e.timestamp for e in ha)


def test_as_of_shows_the_past_and_is_read_only(pair, clock) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    mid = a.add("first", user_id="u")
    t1 = a.get(mid).updated_at  # type: ignore[union-attr]
    a.update(mid, "second")
    t2 = a.get(mid).updated_at  # type: ignore[union-attr]
    a.delete(mid)
    assert a.as_of(t1).get(mid).text == "first"  # type: ignore[union-attr]
    assert a.as_of(t2).get(mid).text == "second"  # type: ignore[union-attr]
    assert a.as_of(t2.wall_ms).list(user_id="u")[0].text == "second"
    assert a.as_of(Timestamp(t1.wall_ms - 1, 0, "ra")).get(mid) is None
    assert a.as_of(clock.now_ms + 10).get(mid) is None
    assert not hasattr(a.as_of(t1), "add")


def test_lww_policy_keeps_the_newest_write(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("one", policy="lww")
    sync_pair(a, b)
    a.update(mid, "a wrote first")
    b.update(mid, "b wrote later")
    sync_pair(a, b)
    assert a.get(mid).text == b.get(mid).text == "b wrote later"  # type: ignore[union-attr]
    a.delete(mid)
    sync_pair(a, b)
    assert a.get(mid) is None and b.get(mid) is None
    assert a.state_digest() == b.state_digest()


def test_ttl_expiry_agrees_everywhere_and_is_collected(pair, clock) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = a.add("short-lived", ttl=5, user_id="u")
    keep = a.add("kept", user_id="u")
    sync_pair(a, b)
    record = b.get(mid)
    assert record is not None and record.expires_at == record.created_at.wall_ms + 5000
    clock.now_ms += 6000
    assert a.get(mid) is None and b.get(mid) is None
    assert [r.id for r in b.list(user_id="u")] == [keep]
    assert a.state_digest() == b.state_digest()  # collection on both sides
    assert a.history(mid) == []
    assert a.collect_expired() == 0


def test_list_uses_scope_filters(pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    m1 = a.add("x", app_id="app", user_id="u1", agent_id="g1")
    m2 = a.add("y", app_id="app", user_id="u2")
    a.add("z", app_id="other", user_id="u1")
    assert [r.id for r in a.list(app_id="app")] == [m1, m2]
    assert [r.id for r in a.list(app_id="app", user_id="u1")] == [m1]
    assert [r.id for r in a.list(agent_id="g1")] == [m1]
    assert len(a.list()) == 3
    with pytest.raises(InvalidArgumentError):
        a.list(colour="red")


def test_sets_are_add_wins(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    a.set_add("tasks", "write tests", app_id="app")
    a.set_add("tasks", "ship")
    sync_pair(a, b)
    a.set_remove("tasks", "ship")
    b.set_add("tasks", "ship")  # concurrent re-add wins
    b.set_add("tasks", ["list", "element"])
    sync_pair(a, b)
    expected = frozenset({"write tests", "ship", ("list", "element")})
    assert a.set_members("tasks") == b.set_members("tasks") == expected
    assert a.get("tasks") is None
    with pytest.raises(InvalidArgumentError):
        a.set_add(a.add("memory"), "x")


def test_batch_commits_all_writes_at_once_and_rolls_back_on_error(pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    with a.batch():
        ids = [a.add(f"m{i}", user_id="u") for i in range(50)]
        a.update(ids[0], "changed inside the batch")
        assert a.get(ids[0]).text == "changed inside the batch"  # type: ignore[union-attr]
    assert len(a.list(user_id="u")) == 50
    with pytest.raises(RuntimeError), a.batch():
        a.add("never committed", user_id="u")
        raise RuntimeError("boom")
    assert len(a.list(user_id="u")) == 50


def test_bad_arguments_raise_typed_errors_and_change_nothing(pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    before = a.state_digest()
    for call in (lambda: a.add(3),  # type: ignore[arg-type]
                 lambda: a.add("x", policy="newest"),
                 lambda: a.add("x", confidence=2.0),
                 lambda: a.add("x", metadata={"bad": object()}),
                 lambda: a.add("x", ttl=-1),
                 lambda: a.add("x", user_id="a\x00b")):
        with pytest.raises(InvalidArgumentError):
            call()
    with pytest.raises(UnknownMemoryError):
        a.update("0" * 32, "nothing there")
    assert a.state_digest() == before and a.journal_seq() == 0


def test_journal_reports_local_and_remote_changes(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    m1 = a.add("x", priority=True)
    sync_once(a, b)
    batch = b.changes_since(0)
    assert [(c.memory_id, c.local, c.priority) for c in batch.changes] == [(m1, False, True)]
    assert b.changes_since(batch.seq).changes == ()
    assert not batch.reset


def test_journal_truncation_tells_consumers_to_rescan(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import memmesh.storage._journal as journal

    monkeypatch.setattr(journal, "JOURNAL_MAX", 10)
    a, _ = pair
    for i in range(30):
        a.add(f"m{i}")
    batch = a.changes_since(0)
    assert batch.reset and batch.changes and batch.changes[0].seq > 1
    assert a.journal_seq() == 30 and batch.seq == 30
    assert not a.changes_since(25).reset

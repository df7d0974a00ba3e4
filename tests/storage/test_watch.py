"""``replica.watch``: local and peer changes in commit order, at least once, resumable
from a cursor across a restart, a RESET instead of silent loss, filters, and a watcher
that never reads costing writers nothing (asserted on buffer sizes, never on time)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from storage_helpers import sync_once, ticking

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import ChangeEvent, Replica
from memmesh.storage import _journal as journal

ROOT = Path(__file__).resolve().parents[2]


def drain(watch: object) -> list[ChangeEvent]:
    """Every event the watch holds now (it must have been opened with timeout=0)."""
    return list(watch)  # type: ignore[call-overload]


def test_local_writes_arrive_in_commit_order_with_op_scope_and_versions(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        watch = r.watch(timeout=0)
        a = r.add("speaks French", user_id="alice", agent_id="tutor")
        b = r.add("likes tea", user_id="bob")
        r.update(a, "speaks French and German")
        r.delete(b)
        r.set_add("tags", "x", user_id="alice")
        events = drain(watch)
        assert [(e.op, e.memory_id) for e in events] == [
            ("UPDATE", a), ("DELETE", b), ("SET", "tags")]  # a's ADD: same page, coalesced
        assert [e.cursor for e in events] == [3, 4, 5] and watch.cursor == 5
        first = events[0]
        assert (first.user_id, first.agent_id, first.app_id, first.run_id) == (
            "alice", "tutor", None, None)
        assert [v.text for v in first.versions] == ["speaks French and German"]
        assert events[1].versions == () and events[1].user_id == "bob"
        assert all(e.local for e in events)
        r.forget(a)
        assert [(e.op, e.memory_id, e.user_id) for e in drain(watch)] == [
            ("FORGET", a, "alice")]


def test_each_page_is_read_after_its_changes_so_a_key_changed_twice_shows_each_time(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", clock=ticking(), durable=False) as r:
        watch = r.watch(timeout=0, page=1)
        a = r.add("v1")
        assert [(e.op, e.versions[0].text) for e in drain(watch)] == [("ADD", "v1")]
        r.update(a, "v2")
        b = r.add("other")
        events = drain(watch)
        assert [(e.op, e.memory_id, e.cursor) for e in events] == [
            ("UPDATE", a, 2), ("ADD", b, 3)]


def test_peer_changes_arrive_with_local_ones_in_commit_order(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", clock=clock, durable=False) as a, \
            Replica.open(tmp_path / "b", clock=clock, durable=False) as b:
        watch = b.watch(timeout=0, page=1)
        mine = b.add("written on b", user_id="u")
        theirs = a.add("written on a", user_id="u")
        sync_once(a, b)
        events = drain(watch)  # read now: an event shows its key as read (see next test)
        later = b.add("written on b later", user_id="u")
        a.update(theirs, "updated on a")
        sync_once(a, b)
        events += drain(watch)
        assert [(e.memory_id, e.op, e.local) for e in events] == [
            (mine, "ADD", True), (theirs, "ADD", False), (later, "ADD", True),
            (theirs, "UPDATE", False)]
        assert [e.cursor for e in events] == sorted(e.cursor for e in events)
        assert events[-1].versions[0].text == "updated on a"


def test_a_noop_is_reported_as_noop_locally_and_from_a_peer(tmp_path: Path) -> None:
    """A NOOP mints a journal entry (it replicates): the watch names it NOOP, with the
    standing versions, not as the version's old op; a later update is UPDATE again."""
    clock = ticking()
    with Replica.open(tmp_path / "a", clock=clock, durable=False) as a, \
            Replica.open(tmp_path / "b", clock=clock, durable=False) as b:
        mid = a.add("speaks French", user_id="alice")
        sync_once(a, b)
        on_a = a.watch(since=a.journal_seq(), timeout=0, page=1)
        on_b = b.watch(since=b.journal_seq(), timeout=0, page=1, ops={"NOOP"})
        a.update(mid, "speaks French")  # unchanged: a NOOP event
        a.record_noop(mid, actor="pipeline", detail={"fact": "speaks French"})
        sync_once(a, b)
        assert [(e.op, e.memory_id, [v.text for v in e.versions]) for e in drain(on_a)] == [
            ("NOOP", mid, ["speaks French"]), ("NOOP", mid, ["speaks French"])]
        assert [(e.op, e.local) for e in drain(on_b)] == [("NOOP", False)]
        a.update(mid, "speaks French and German")
        assert [e.op for e in drain(on_a)] == ["UPDATE"]


def test_a_watch_resumes_from_its_cursor_after_the_replica_is_closed_and_reopened(
        tmp_path: Path) -> None:
    path = tmp_path / "r"
    with Replica.open(path) as r:
        ids = [r.add(f"memory {i}") for i in range(3)]
        watch = r.watch(since=0, timeout=0, page=1)
        assert [e.memory_id for e in (watch.next(), watch.next())] == ids[:2]  # type: ignore[union-attr]
        cursor = watch.cursor
    with Replica.open(path) as r:  # a restart: only the cursor survived
        ids.append(r.add("memory 3"))
        assert [e.memory_id for e in drain(r.watch(since=cursor, timeout=0))] == ids[2:]


def test_a_cursor_that_fell_off_the_trimmed_journal_gets_a_reset_event_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "JOURNAL_MAX", 4)
    with Replica.open(tmp_path / "r", durable=False) as r:
        old = r.add("seen")
        watch = r.watch(timeout=0, since=r.journal_seq())
        for i in range(10):
            r.add(f"while away {i}")
        events = drain(watch)
        assert events[0].op == "RESET" and events[0].memory_id is None
        assert events[0].cursor <= r.journal_seq()
        assert old not in {e.memory_id for e in events}
        # after the reset, changes are delivered again
        fresh = r.add("after the reset")
        assert [e.memory_id for e in drain(watch)] == [fresh]


def test_a_cursor_beyond_the_journal_end_gets_a_reset_not_silence(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        r.add("one")
        watch = r.watch(since=1000, timeout=0)  # e.g. kept across a restore from backup
        assert [e.op for e in drain(watch)] == ["RESET"]
        mid = r.add("two")
        assert [e.memory_id for e in drain(watch)] == [mid]


def test_expired_memories_are_reported_with_their_scope(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "r", clock=clock, durable=False) as r:
        watch = r.watch(timeout=0, user_id="alice", ops={"EXPIRE"})
        mid = r.add("short-lived", user_id="alice", ttl=1)
        r.add("short-lived too", user_id="bob", ttl=1)
        clock.advance(5_000)
        assert r.collect_expired() == 2
        events = drain(watch)
        assert [(e.op, e.memory_id, e.user_id) for e in events] == [("EXPIRE", mid, "alice")]


def test_filters_by_scope_op_prefix_and_predicate(tmp_path: Path) -> None:
    ids = iter(f"{prefix}{i:030d}" for i, prefix in enumerate(["aa", "ab", "aa", "ab"]))
    with Replica.open(tmp_path / "r", durable=False, id_factory=lambda: next(ids)) as r:
        view = r.view(user_id="alice", agent_id="billing")
        by_scope = r.watch(timeout=0, user_id="alice", agent_id=None)
        by_op = r.watch(timeout=0, ops=["DELETE"])
        by_prefix = r.watch(timeout=0, prefix="ab")
        by_view = r.watch(timeout=0, where=view.visible)
        m0 = r.add("user-level", user_id="alice")
        m1 = r.add("agent-level", user_id="alice", agent_id="billing")
        m2 = r.add("another user", user_id="bob")
        m3 = r.add("another agent", user_id="alice", agent_id="support")
        r.delete(m2)
        assert [e.memory_id for e in drain(by_scope)] == [m0]
        assert [e.memory_id for e in drain(by_op)] == [m2]
        assert [e.memory_id for e in drain(by_prefix)] == [m1, m3]
        assert [e.memory_id for e in drain(by_view)] == [m0, m1]


@pytest.mark.parametrize("bad", [
    {"ops": "ADD"}, {"ops": ["ADDED"]}, {"prefix": 3}, {"where": 3}, {"since": -1},
    {"since": "0"}, {"timeout": -1}, {"poll_interval": 0}, {"page": 0}, {"color": "red"},
    {"user_id": 3},
])
def test_bad_watch_arguments_are_refused_with_a_typed_error(tmp_path: Path,
                                                             bad: dict[str, object]) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r, pytest.raises(InvalidArgumentError):
        r.watch(**bad)  # type: ignore[arg-type]


def test_a_watcher_that_never_reads_holds_one_page_and_never_blocks_writers(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        idle = r.watch(page=8)
        stuck = r.watch(page=8, timeout=0)
        r.add("first")
        assert stuck.next() is not None  # it read one page, then stops reading
        for i in range(500):  # all in this thread: a writer waiting on a watch would hang
            r.add(f"memory {i}")
        assert idle.buffered == 0 and stuck.buffered == 0
        assert r._signal.subscribers == 0  # nothing registered while not waiting
        assert stuck.next() is not None and stuck.buffered <= stuck.page - 1
        assert idle.cursor < r.journal_seq()  # the backlog stays in the journal


def test_a_blocked_watch_is_woken_by_a_commit_in_this_process(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        watch = r.watch(poll_interval=120.0)  # only the commit signal can wake it in time
        got: list[ChangeEvent | None] = []
        reader = threading.Thread(target=lambda: got.append(watch.next(timeout=60)))
        reader.start()
        mid = r.add("wake up")
        reader.join(90)
        assert got and got[0] is not None and got[0].memory_id == mid


def test_close_ends_a_blocked_iteration_and_closing_the_replica_ends_every_watch(
        tmp_path: Path) -> None:
    r = Replica.open(tmp_path / "r", durable=False)
    first, second = r.watch(poll_interval=120.0), r.watch(poll_interval=120.0)
    results: list[list[ChangeEvent]] = []
    threads = [threading.Thread(target=lambda w=w: results.append(list(w)))
               for w in (first, second)]
    for thread in threads:
        thread.start()
    first.close()
    threads[0].join(60)
    assert not threads[0].is_alive()
    r.close()
    threads[1].join(60)
    assert not threads[1].is_alive() and results == [[], []]


def test_writes_of_another_process_on_the_same_directory_are_polled(tmp_path: Path) -> None:
    path = tmp_path / "r"
    with Replica.open(path) as r:
        watch = r.watch(poll_interval=0.05)
        code = ("import sys; from memmesh.storage import Replica\n"
                "with Replica.open(sys.argv[1]) as r: print(r.add('from afar'))")
        out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        event = watch.next(timeout=60)
        assert event is not None and event.memory_id == out.stdout.strip() and event.local


def test_a_batch_wakes_watchers_once_and_an_aborted_batch_not_at_all(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        before = r._signal.generation
        with r.batch():
            r.add("one")
            r.add("two")
        assert r._signal.generation == before + 1
        with pytest.raises(RuntimeError), r.batch():
            r.add("three")
            raise RuntimeError("abort")
        assert r._signal.generation == before + 1


@given(ops=st.lists(st.tuples(st.sampled_from(["add", "update", "delete"]),
                              st.integers(0, 3)), max_size=25),
       page=st.integers(1, 6), split=st.integers(0, 25))
def test_every_change_is_delivered_at_or_after_its_cursor_in_commit_order(
        tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]], page: int,
        split: int) -> None:
    """Property: for every journal entry (seq s, key k) some event names k with a cursor
    >= s, cursors strictly increase, and resuming from any delivered cursor in a new
    watch loses nothing; the last event of each key shows its current state."""
    with Replica.open(tmp_path_factory.mktemp("w"), durable=False) as r:
        ids: list[str] = []
        for op, n in ops:
            if op == "add" or not ids:
                ids.append(r.add(f"v{len(ids)}"))
            elif op == "update":
                if r.get(ids[n % len(ids)]) is not None:
                    r.update(ids[n % len(ids)], f"u{n}")
            else:
                r.delete(ids[n % len(ids)])
        entries = r.changes_since(0, limit=10_000).changes
        first = r.watch(since=0, timeout=0, page=page)
        events = [e for _, e in zip(range(split), first, strict=False)]
        events += drain(r.watch(since=first.cursor, timeout=0, page=page))
        cursors = [e.cursor for e in events]
        assert cursors == sorted(set(cursors))
        for entry in entries:
            assert any(e.memory_id == entry.memory_id and e.cursor >= entry.seq
                       for e in events)
        for memory_id in {e.memory_id for e in events}:
            last = [e for e in events if e.memory_id == memory_id][-1]
            record = r.get(memory_id)  # type: ignore[arg-type]
            assert (record is None) == (last.op == "DELETE")
            if record is not None:
                assert last.versions == record.versions

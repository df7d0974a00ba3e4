"""The shared timeline through the replica API (issue 15, deliverable 2): converged
replicas return the same ``history(id)`` (intermediate updates and NOOPs included) and
agree on ``as_of``, under any sync order; the size bound; ``forget`` purges everywhere;
actor and role on every event; importance, validated and replicated."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_once, sync_pair, ticking

from memmesh.crdt import InvalidArgumentError
from memmesh.crdt.keystate import MAX_KEEP
from memmesh.storage import Replica, UnknownMemoryError

NAMES = ("ra", "rb", "rc")


@contextmanager
def _trio() -> Iterator[list[Replica]]:
    clock = ticking()
    with tempfile.TemporaryDirectory() as tmp:
        replicas = [Replica.open(Path(tmp) / n, replica_id=n, clock=clock, durable=False,
                                 history_limit=MAX_KEEP) for n in NAMES]
        try:
            yield replicas
        finally:
            for r in replicas:
                r.close()


_OPS = st.lists(st.tuples(st.sampled_from(("update", "noop", "same", "delete", "sync")),
                          st.integers(0, 2), st.integers(0, 2)), max_size=14)


def _run(replicas: list[Replica], mid: str, ops: list[tuple[str, int, int]]) -> int:
    """Apply ``ops``; return how many events they logged."""
    logged = 1  # the ADD
    for i, (op, at, other) in enumerate(ops):
        r = replicas[at]
        if op == "sync":
            sync_once(r, replicas[other])
            continue
        if r.get(mid) is None:
            continue
        if op == "update":
            r.update(mid, f"text {i}", actor=f"agent{at}", role="worker")
        elif op == "same":
            record = r.get(mid)
            assert record is not None
            if record.conflicted:
                continue
            r.update(mid, record.text, actor=record.actor)  # unchanged: a NOOP
        elif op == "noop":
            r.record_noop(mid, actor=f"agent{at}", detail={"why": "duplicate"})
        else:
            assert r.delete(mid, actor=f"agent{at}", role="lead")
        logged += 1
    return logged


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 3), ops=_OPS, order=st.permutations([0, 1, 2]))
def test_replicas_converge_to_the_same_timeline_and_past_under_any_sync_order(
        n: int, ops: list[tuple[str, int, int]], order: list[int]) -> None:
    with _trio() as trio:
        replicas = trio[:n]
        mid = replicas[0].add("first", actor="agent0", user_id="u")
        logged = _run(replicas, mid, [(o, a % n, b % n) for o, a, b in ops])
        for source in [i for i in order if i < n] * 2:  # settle in the drawn order
            for target in range(n):
                if target != source:
                    sync_pair(replicas[source], replicas[target])
        histories = [r.history(mid) for r in replicas]
        assert all(h == histories[0] for h in histories)
        assert len(histories[0]) == logged  # every event, intermediate ones and NOOPs
        for event in histories[0]:
            views = [r.as_of(event.timestamp).get(mid) for r in replicas]
            assert all(v == views[0] for v in views)
        assert len({r.state_digest() for r in replicas}) == 1


def test_intermediate_updates_between_syncs_reach_the_peer(tmp_path: Path) -> None:
    """The issue's case: A wrote ADD and three UPDATEs between syncs; B recorded only
    ADD and the last UPDATE."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("v0", actor="alice")
        sync_pair(a, b)
        for text in ("v1", "v2", "v3"):
            a.update(mid, text, actor="alice")
        sync_pair(a, b)
        assert [(e.op, e.text) for e in b.history(mid)] == \
            [("ADD", "v0"), ("UPDATE", "v1"), ("UPDATE", "v2"), ("UPDATE", "v3")]
        t2 = b.history(mid)[2].timestamp
        assert b.as_of(t2).get(mid).text == a.as_of(t2).get(mid).text == "v2"  # type: ignore[union-attr]


def test_the_timeline_is_compacted_to_its_limit_alike_on_every_replica(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock, history_limit=4) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("v0", actor="alice")
        sync_pair(a, b)
        for i in range(1, 40):
            (a if i % 2 else b).update(mid, f"v{i}", actor="alice")
            if i % 5 == 0:
                sync_pair(a, b)
        b.record_noop(mid, actor="bot")
        sync_pair(a, b)
        history = a.history(mid)
        assert history == b.history(mid)
        # the ADD and the newest superseded events up to the limit, and the standing
        # versions (two if the last updates were concurrent)
        standing = a.get(mid).versions  # type: ignore[union-attr]
        assert len(history) == 4 + len(standing)
        assert {v.dot for v in standing} <= {e.dot for e in history}
        assert history[0].op == "ADD" and history[-1].op == "NOOP"
        assert [e.text for e in history if e.op == "UPDATE"][-1] == "v39"
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(InvalidArgumentError):
            Replica.open(tmp_path / "c", history_limit=bad)  # type: ignore[arg-type]


def test_history_limit_zero_keeps_only_the_standing_versions_events(tmp_path: Path) -> None:
    """The smallest timeline: the events of the versions that stand, alike on a peer
    that keeps the default (keep joins by min), and no past for a later update."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock, history_limit=0) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("v0", actor="alice", detail={"why": "first"})
        assert [(e.op, dict(e.detail)) for e in a.history(mid)] == [("ADD", {"why": "first"})]
        for text in ("v1", "v2"):
            a.update(mid, text, actor="alice")
        a.record_noop(mid, actor="bot")
        sync_pair(a, b)
        b.update(mid, "v3", actor="bob")
        sync_pair(a, b)
        assert [(e.op, e.text) for e in a.history(mid)] == [("UPDATE", "v3")]
        assert b.history(mid) == a.history(mid)
        assert b.state_digest() == a.state_digest()
        assert a.delete(mid, actor="alice")
        assert a.history(mid) == []  # nothing stands: no event is protected


def test_forget_purges_the_timeline_on_every_replica_and_names_who(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("secret launch code 1234", user_id="u")
        a.update(mid, "secret launch code 5678")
        sync_pair(a, b)
        b.record_noop(mid, actor="bot", detail={"absorbed": "launch code 1234"})
        assert b.forget(mid, actor="alice", role="user")
        sync_pair(a, b)
        for r in (a, b):
            history = r.history(mid)
            assert [(e.op, e.actor, e.role, e.text) for e in history] == \
                [("FORGET", "alice", "user", None)]
            assert not history[0].detail
            with r._env.read() as txn:
                for db in ("state", "history", "journal", "origin", "scope"):
                    for k, v in txn.prefix(db, b""):
                        assert b"launch code" not in k + v
        assert a.as_of(clock.now_ms).get(mid) is None


def test_delete_resolve_and_updates_log_their_actor_and_role(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("base", actor="alice", role="worker")
        sync_pair(a, b)
        a.update(mid, "from a", actor="alice", role="worker")
        b.update(mid, "from b", actor="bob", role="worker")
        sync_pair(a, b)
        record = a.get(mid)
        assert record is not None and record.conflicted
        version = a.resolve(mid, "merged", resolver="manual",
                            inputs=tuple(v.dot for v in record.versions),
                            actor="carol", role="lead")
        assert (version.actor, version.role) == ("carol", "lead")
        sync_pair(a, b)
        b.delete(mid, actor="dave", role="admin")
        sync_pair(a, b)
        events = [(e.op, e.actor, e.role) for e in a.history(mid)]
        assert events[-2:] == [("RESOLVE", "carol", "lead"), ("DELETE", "dave", "admin")]
        assert a.history(mid) == b.history(mid)
        lww = a.add("setting", policy="lww")
        assert a.delete(lww, actor="erin", role="admin")
        assert [(e.op, e.actor, e.role) for e in a.history(lww)][-1] == \
            ("DELETE", "erin", "admin")
        with pytest.raises(InvalidArgumentError):
            a.delete(lww, actor=7)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), True, "high"])
def test_importance_outside_zero_to_one_is_refused_and_writes_nothing(
        tmp_path: Path, bad: object) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra", clock=ticking()) as a:
        mid = a.add("x")
        seq = a.journal_seq()
        with pytest.raises(InvalidArgumentError, match="importance"):
            a.add("y", importance=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="importance"):
            a.update(mid, "z", importance=bad)  # type: ignore[arg-type]
        assert a.journal_seq() == seq and len(a.list()) == 1


def test_importance_replicates_is_kept_by_updates_and_is_the_max_of_a_conflict(
        tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        mid = a.add("deploy window is Friday", importance=0.75)
        plain = a.add("the office plant is green")
        sync_pair(a, b)
        assert b.get(mid).importance == 0.75  # type: ignore[union-attr]
        assert b.get(plain).importance is None  # type: ignore[union-attr]
        b.update(mid, "deploy window is Monday")  # keeps the importance
        a.update(mid, "deploy window is Tuesday", importance=0.25)
        sync_pair(a, b)
        record = a.get(mid)
        assert record is not None and record.conflicted
        assert sorted(v.importance for v in record.versions) == [0.25, 0.75]  # type: ignore[type-var]
        assert record.importance == b.get(mid).importance == 0.75  # type: ignore[union-attr]
        resolved = a.resolve(mid, "deploy window is Monday", resolver="manual",
                             inputs=tuple(v.dot for v in record.versions))
        assert resolved.importance == 0.75
        with pytest.raises(UnknownMemoryError):
            a.update("no-such-memory", "x", importance=0.5)


def test_the_timeline_size_measurement_runs_and_compaction_bounds_it(tmp_path: Path) -> None:
    from memmesh.benchmarks.bench_timeline import measure

    compacted, full = measure(60, 8, tmp_path), measure(60, MAX_KEEP, tmp_path)
    assert (compacted["events"], full["events"]) == (9, 61)
    assert compacted["state_bytes"] < full["state_bytes"] / 4
    assert compacted["state_bytes_on_peer"] == compacted["state_bytes"]


def test_a_sync_leaves_out_the_events_of_origins_the_peer_holds(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b, \
            Replica.open(tmp_path / "c", replica_id="rc", clock=clock) as c:
        mid = a.add("v0 " + "x" * 200, user_id="u")
        for i in range(1, 30):
            a.update(mid, f"v{i} " + "x" * 200)
        sync_pair(a, b)
        b.update(mid, "b's edit", actor="bob")
        delta = b.sync_changes(a.sync_summary())  # a holds all of its own events
        whole = b.sync_changes(c.sync_summary())  # c holds nothing
        assert len(delta) * 10 < len(whole)
        a.sync_apply(delta)
        c.sync_apply(whole)
        assert a.history(mid) == b.history(mid) == c.history(mid)
        assert len(a.history(mid)) == 31
        assert a.state_digest() == b.state_digest() == c.state_digest()
        # digest repair asks for a key whole, whatever the watermarks say
        assert len(b.sync_changes(a.sync_summary(want=[mid]))) > len(whole) - 100

"""The arbiter election: one deterministic arbiter per conflict, takeover by rank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memmesh.merge import Election, arbiter_rank, resolve_conflicts, takeover_wait
from memmesh.storage import MemoryRecord, Replica

START_MS = 1_700_000_000_000


def _sync(a: Replica, b: Replica) -> None:
    for src, dst in ((a, b), (b, a)):
        while dst.sync_apply(src.sync_changes(dst.sync_summary())).changed:
            pass


@pytest.fixture
def conflicted(tmp_path: Path) -> Iterator[tuple[Replica, Replica, MemoryRecord]]:
    now = [START_MS]
    with Replica.open(tmp_path / "a", replica_id="ra", clock=lambda: now[0]) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=lambda: now[0]) as b:
        mid = a.add("base")
        _sync(a, b)
        now[0] += 1
        a.update(mid, "x")
        b.update(mid, "y")
        _sync(a, b)
        record = a.get(mid)
        assert record is not None and record.conflicted and record == b.get(mid)
        yield a, b, record


def test_one_candidate_is_elected_and_the_next_takes_over_after_one_wait(
        conflicted: tuple[Replica, Replica, MemoryRecord]) -> None:
    a, b, record = conflicted
    assert sorted(arbiter_rank(record)) == ["ra", "rb"]
    elections = {r.replica_id: Election(r.replica_id) for r in (a, b)}
    now = START_MS + 10
    first = [rid for rid, e in elections.items()
             if e.may_resolve(record, now, deadline_ms=1000)]
    assert first == [arbiter_rank(record)[0]]
    runner_up = elections[arbiter_rank(record)[1]]
    assert not runner_up.may_resolve(record, now + 999, deadline_ms=1000)
    assert runner_up.may_resolve(record, now + 1000, deadline_ms=1000)


def test_a_member_that_wrote_no_version_waits_for_every_candidate(
        conflicted: tuple[Replica, Replica, MemoryRecord]) -> None:
    _, _, record = conflicted
    outsider = Election("rc")
    now = START_MS + 10
    assert not outsider.may_resolve(record, now, deadline_ms=1000)
    assert not outsider.may_resolve(record, now + 1999, deadline_ms=1000)
    assert outsider.may_resolve(record, now + 2000, deadline_ms=1000)
    assert takeover_wait(record, 1000) == 1000  # no RESOLVE stands: no back-off


def test_resolve_conflicts_keeps_one_election_per_replica_across_passes(
        conflicted: tuple[Replica, Replica, MemoryRecord]) -> None:
    """The node calls ``resolve_conflicts`` every interval: the runner-up's wait runs
    from its first pass, not from each pass."""
    a, b, record = conflicted
    runner_up = a if arbiter_rank(record)[1] == "ra" else b
    now = START_MS + 10
    assert resolve_conflicts(runner_up, lambda c: None, deadline_ms=1000, now_ms=now) == []
    outcomes = resolve_conflicts(runner_up, lambda c: None, deadline_ms=1000, now_ms=now + 1000)
    assert [o.memory_id for o in outcomes] == [record.id]

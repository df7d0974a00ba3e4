"""Bulk deletes by scope: ``delete_all`` and ``end_run`` delete exactly the matching
memories, as ordinary deletes (history with the actor, replicated), and refuse a scope
that would reach everyone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_helpers import sync_pair, ticking

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import Replica


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as r:
        yield r


def test_delete_all_deletes_exactly_the_matching_memories_and_counts_them(
        replica: Replica) -> None:
    a1 = replica.add("a1", user_id="alice")
    a2 = replica.add("a2", user_id="alice", agent_id="billing")
    bob = replica.add("b", user_id="bob")
    other_app = replica.add("a3", user_id="alice", app_id="other")
    replica.set_add("tags", "x", user_id="alice")
    assert replica.delete_all(user_id="alice", app_id=None, actor="admin",
                              role="operator") == 2
    assert replica.get(a1) is None and replica.get(a2) is None
    assert replica.get(bob) is not None and replica.get(other_app) is not None
    assert replica.set_members("tags") == frozenset({"x"})  # sets are not memories
    for mid in (a1, a2):
        last = replica.history(mid)[-1]
        assert (last.op, last.actor, last.role) == ("DELETE", "admin", "operator")
    assert replica.delete_all(user_id="alice", app_id=None) == 0  # nothing live is left


def test_delete_all_refuses_a_scope_that_reaches_every_user(replica: Replica) -> None:
    mid = replica.add("fact", user_id="alice")
    for scope in ({}, {"user_id": None}, {"agent_id": None, "run_id": None}):
        with pytest.raises(InvalidArgumentError, match="everything=True"):
            replica.delete_all(**scope)
    with pytest.raises(InvalidArgumentError, match="no scope"):
        replica.delete_all(everything=True, user_id="alice")
    with pytest.raises(InvalidArgumentError):
        replica.delete_all(user="alice")  # an unknown field, not a typo deleting nothing
    with pytest.raises(InvalidArgumentError):
        replica.delete_all(user_id="alice", actor=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        replica.delete_all(user_id="alice", role=3)  # type: ignore[arg-type]
    assert replica.get(mid) is not None  # every refusal changed nothing


def test_delete_all_everything_deletes_every_memory(replica: Replica) -> None:
    for scope in ({}, {"user_id": "alice"}, {"app_id": "x", "run_id": "r"}):
        replica.add("m", **scope)
    assert replica.delete_all(everything=True) == 3
    assert replica.list() == []


def test_end_run_discards_a_sessions_memories_only(replica: Replica) -> None:
    run = [replica.add(f"scratch {i}", user_id="alice", agent_id="g", run_id="r1")
           for i in range(3)]
    other_run = replica.add("scratch", user_id="alice", agent_id="g", run_id="r2")
    other_agent = replica.add("scratch", user_id="alice", agent_id="h", run_id="r1")
    durable = replica.add("alice speaks French", user_id="alice")
    assert replica.end_run("r1", agent_id="g", actor="g", role="agent") == 3
    assert all(replica.get(mid) is None for mid in run)
    for mid in (other_run, other_agent, durable):
        assert replica.get(mid) is not None
    assert (replica.history(run[0])[-1].actor, replica.history(run[0])[-1].role) == \
        ("g", "agent")
    with pytest.raises(InvalidArgumentError):
        replica.end_run("")


def test_bulk_deletes_replicate_as_ordinary_deletes(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="a", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="b", clock=clock) as b:
        ids = [a.add(f"fact {i}", user_id="alice") for i in range(3)]
        kept = a.add("bob's", user_id="bob")
        sync_pair(a, b)
        assert a.delete_all(user_id="alice", actor="admin") == 3
        sync_pair(a, b)
        assert [r.id for r in b.list()] == [kept]
        assert all(b.history(mid)[-1].op == "DELETE" for mid in ids)
        assert a.state_digest() == b.state_digest()


def test_a_bulk_delete_is_one_transaction(replica: Replica,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure midway commits none of the deletes."""
    ids = [replica.add(f"m{i}", user_id="u") for i in range(3)]
    original = replica._memory.delete
    calls = []

    def failing(memory_id: str, *, actor: str | None = None,
                role: str | None = None) -> bool:
        calls.append(memory_id)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return original(memory_id, actor=actor, role=role)

    monkeypatch.setattr(replica._memory, "delete", failing)
    with pytest.raises(RuntimeError):
        replica.delete_all(user_id="u")
    monkeypatch.undo()
    assert [r.id for r in replica.list(user_id="u")] == ids

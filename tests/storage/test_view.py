"""Scoped views (``Replica.view``): the union of the app, user, agent and run tiers one
agent sees, most specific first, never another user's, agent's or run's memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import sync_pair, ticking

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import InvalidFilterError, Replica, ScopedView


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as r:
        yield r


def test_a_view_reads_the_app_user_agent_and_run_tiers_most_specific_first(
        replica: Replica) -> None:
    app = replica.add("the product is called Zylos", app_id="zylos")
    user = replica.add("alice speaks French", user_id="alice")
    agent = replica.add("billing uses EUR", user_id="alice", agent_id="billing")
    run = replica.add("ticket 42 is open", user_id="alice", agent_id="billing", run_id="r1")
    # not visible: another user, agent, run or app, and an unscoped memory
    replica.add("bob speaks German", user_id="bob")
    replica.add("support's note", user_id="alice", agent_id="support")
    replica.add("ticket 7", user_id="alice", agent_id="billing", run_id="r0")
    replica.add("other app", app_id="other")
    replica.add("unscoped")
    view = replica.view(app_id="zylos", user_id="alice", agent_id="billing", run_id="r1")
    records = view.list()
    assert [r.id for r in records] == [run, agent, user, app]
    assert [r.scope_tier for r in records] == ["run", "agent", "user", "app"]
    assert view.get(user) is not None and view.get(user).text == "alice speaks French"  # type: ignore[union-attr]


def test_the_issue_case_an_agent_sees_the_user_level_memory(replica: Replica) -> None:
    fact = replica.add("alice speaks French", user_id="alice")
    assert replica.list(user_id="alice", agent_id="billing") == []  # the old miss
    view = replica.view(user_id="alice", agent_id="billing")
    assert [r.id for r in view.list()] == [fact]


def test_a_memory_of_a_user_is_invisible_to_a_view_without_that_user(
        replica: Replica) -> None:
    mid = replica.add("alice's secret", user_id="alice", app_id="zylos")
    assert replica.view(app_id="zylos").get(mid) is None
    assert replica.view(app_id="zylos", user_id="bob").get(mid) is None
    assert replica.view(app_id="zylos").list() == []
    assert replica.view(user_id="alice").get(mid) is None  # it sets an app the view lacks
    assert replica.view(user_id="alice", app_id="zylos").get(mid) is not None


def test_within_a_tier_a_view_lists_oldest_first_and_pages_after_filtering(
        replica: Replica) -> None:
    ids = [replica.add(f"user fact {i}", user_id="u", metadata={"n": i}) for i in range(6)]
    agent = replica.add("agent fact", user_id="u", agent_id="g", metadata={"n": 5})
    view = replica.view(user_id="u", agent_id="g")
    assert [r.id for r in view.list()] == [agent, *ids]
    assert [r.id for r in view.list(filters={"n": {"$gte": 4}})] == [agent, ids[4], ids[5]]
    assert [r.id for r in view.list(filters={"n": {"$gte": 4}}, offset=1, limit=1)] == [ids[4]]
    with pytest.raises(InvalidFilterError, match=r"\$bad"):
        view.list(filters={"n": {"$bad": 1}})


def test_a_view_hides_deleted_and_expired_memories(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "r", replica_id="r", clock=clock) as replica:
        gone = replica.add("gone", user_id="u")
        short = replica.add("short-lived", user_id="u", ttl=1.0)
        kept = replica.add("kept", user_id="u")
        replica.delete(gone)
        clock.advance(5_000)
        view = replica.view(user_id="u")
        assert [r.id for r in view.list()] == [kept]
        assert view.get(gone) is None and view.get(short) is None


def test_a_view_sees_memories_merged_from_a_peer(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="a", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="b", clock=clock) as b:
        fact = a.add("alice speaks French", user_id="alice")
        sync_pair(a, b)
        assert [r.id for r in b.view(user_id="alice", agent_id="x").list()] == [fact]


def test_a_view_needs_a_scope_and_refuses_bad_fields(replica: Replica) -> None:
    with pytest.raises(InvalidArgumentError, match="at least one"):
        replica.view()
    with pytest.raises(InvalidArgumentError):
        replica.view(user_id="u\x00")
    with pytest.raises(InvalidArgumentError):
        replica.view(user_id=3)  # type: ignore[arg-type]
    view = replica.view(user_id="u")
    assert isinstance(view, ScopedView) and view.scope["user_id"] == "u"
    assert "user_id='u'" in repr(view)
    with pytest.raises(InvalidArgumentError):
        view.get(3)  # type: ignore[arg-type]


def test_a_view_reads_index_ranges_never_the_whole_state(replica: Replica,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """One ``scope`` range per field the view sets; no scan of the ``state`` table."""
    for i in range(20):
        replica.add(f"noise {i}", user_id=f"other{i}")
    fact = replica.add("mine", user_id="u")
    from memmesh.storage import _env

    seen: list[tuple[str, bytes]] = []
    original = _env.Txn.prefix

    def spy(self: Any, db: str, prefix: bytes) -> Any:
        seen.append((db, prefix))
        return original(self, db, prefix)

    monkeypatch.setattr(_env.Txn, "prefix", spy)
    view = replica.view(app_id="a", user_id="u", agent_id="g", run_id="r")
    assert [r.id for r in view.list()] == [fact]
    assert [db for db, _ in seen] == ["scope"] * 4
    assert len({p for _, p in seen}) == 4


# -- the property: a view never returns another user's, agent's or run's memory --------

VALUES = st.sampled_from([None, "x", "y"])
scopes = st.fixed_dictionaries({"app_id": VALUES, "user_id": VALUES, "agent_id": VALUES,
                                "run_id": VALUES})


@settings(max_examples=60)
@given(memories=st.lists(scopes, max_size=25), views=st.lists(scopes, min_size=1, max_size=5))
def test_a_view_returns_exactly_the_memories_whose_set_fields_equal_its_own(
        tmp_path_factory: pytest.TempPathFactory, memories: list[dict[str, Any]],
        views: list[dict[str, Any]]) -> None:
    path = tmp_path_factory.mktemp("prop")
    with Replica.open(path, replica_id="r", clock=ticking()) as replica:
        ids = {replica.add(f"m{i}", **scope): scope for i, scope in enumerate(memories)}
        for scope in views:
            if all(v is None for v in scope.values()):
                continue
            view = replica.view(**scope)
            expected = {mid for mid, mem in ids.items()
                        if any(v is not None for v in mem.values())
                        and all(v is None or v == scope[k] for k, v in mem.items())}
            got = view.list()
            assert {r.id for r in got} == expected
            assert len(got) == len(expected)  # each memory once
            for record in got:  # never another user's, agent's or run's memory
                for field in ("app_id", "user_id", "agent_id", "run_id"):
                    value = getattr(record, field)
                    assert value is None or value == scope[field]
            ranks = [("run", "agent", "user", "app").index(r.scope_tier) for r in got]
            assert ranks == sorted(ranks)
            for mid in ids:
                assert (view.get(mid) is not None) == (mid in expected)

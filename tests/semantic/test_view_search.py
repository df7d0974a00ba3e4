"""Search through a scoped view, with metadata filters, a score threshold and an offset:
every filter applies before ranking, so a dropped memory never takes a top-k slot."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.semantic import HashingEmbedder, InvalidQueryError, SemanticIndex
from memmesh.storage import InvalidFilterError, Replica


def test_a_view_search_finds_the_user_level_fact_an_agent_needs(
        open_replica: Callable[..., Any]) -> None:
    replica = open_replica("r")
    fact = replica.add("alice speaks French", user_id="alice")
    replica.add("bob speaks French", user_id="bob")
    replica.add("support speaks French", user_id="alice", agent_id="support")
    index = SemanticIndex(replica, HashingEmbedder())
    assert index.search("speaks French", user_id="alice", agent_id="billing") == []
    hits = index.search("speaks French", view=replica.view(user_id="alice",
                                                           agent_id="billing"))
    assert [(h.id, h.scope_tier) for h in hits] == [(fact, "user")]


def test_on_equal_score_the_most_specific_tier_comes_first(
        open_replica: Callable[..., Any]) -> None:
    replica = open_replica("r")
    app = replica.add("deploys happen on friday", app_id="z")
    user = replica.add("deploys happen on friday", app_id="z", user_id="u")
    run = replica.add("deploys happen on friday", app_id="z", user_id="u", agent_id="g",
                      run_id="r1")
    agent = replica.add("deploys happen on friday", app_id="z", user_id="u", agent_id="g")
    index = SemanticIndex(replica, HashingEmbedder())
    view = replica.view(app_id="z", user_id="u", agent_id="g", run_id="r1")
    hits = index.search("deploys friday", view=view)
    assert len({round(h.score, 5) for h in hits}) == 1  # same text, same clock: a tie
    assert [h.id for h in hits] == [run, agent, user, app]


def test_filters_and_threshold_apply_before_top_k(open_replica: Callable[..., Any]) -> None:
    replica = open_replica("r")
    best = [replica.add(f"budget review {i}", user_id="u", metadata={"kind": "draft"})
            for i in range(5)]
    wanted = replica.add("the budget was approved", user_id="u",
                         metadata={"kind": "final", "year": 2025})
    replica.add("kyoto cello", user_id="u", metadata={"kind": "final"})
    index = SemanticIndex(replica, HashingEmbedder())
    assert wanted not in [h.id for h in index.search("budget review", 3, user_id="u")]
    hits = index.search("budget review", 1, user_id="u", filters={"kind": "final"})
    assert [h.id for h in hits] == [wanted]  # five better drafts did not crowd it out
    hits = index.search("budget", 5, user_id="u",
                        filters={"$or": [{"year": {"$gte": 2025}}, {"kind": "nope"}]})
    assert [h.id for h in hits] == [wanted]
    everything = index.search("budget review", 10, user_id="u")
    cut = everything[2].score
    above = index.search("budget review", 10, user_id="u", threshold=cut)
    assert [h.id for h in above] == [h.id for h in everything if h.score >= cut]
    assert 3 <= len(above) < len(everything)
    assert set(best) >= {h.id for h in above}
    above_all = everything[0].score + 1e-3
    assert index.search("budget review", 10, user_id="u", threshold=above_all) == []


def test_offset_pages_through_the_ranking(open_replica: Callable[..., Any]) -> None:
    replica = open_replica("r")
    for i in range(8):
        replica.add(f"tea note {i} " + "tea " * i, user_id="u")
    index = SemanticIndex(replica, HashingEmbedder())
    ranking = [h.id for h in index.search("tea", 8, user_id="u")]
    assert [h.id for h in index.search("tea", 3, user_id="u", offset=2)] == ranking[2:5]
    assert index.search("tea", 3, user_id="u", offset=8) == []


def test_a_conflicted_memory_is_filtered_by_the_version_that_matched(
        open_replica: Callable[..., Any]) -> None:
    from replica_helpers import sync

    a, b = open_replica("a"), open_replica("b")
    mid = a.add("tea or coffee", user_id="u")
    sync(a, b)
    a.update(mid, "tea every morning", metadata={"src": "a"})
    b.update(mid, "coffee every morning", metadata={"src": "b"})
    sync(a, b)
    assert a.get(mid).conflicted
    index = SemanticIndex(a, HashingEmbedder())
    hits = index.search("tea every morning", user_id="u", filters={"src": "b"})
    assert [(h.id, h.text) for h in hits] == [(mid, "coffee every morning")]


def test_search_refuses_bad_views_filters_and_pages(open_replica: Callable[..., Any]) -> None:
    replica, other = open_replica("r"), open_replica("o")
    replica.add("tea", user_id="u")
    index = SemanticIndex(replica, HashingEmbedder())
    view = replica.view(user_id="u")
    with pytest.raises(InvalidQueryError, match="not both"):
        index.search("tea", view=view, user_id="u")
    with pytest.raises(InvalidQueryError, match="replica"):
        index.search("tea", view=other.view(user_id="u"))
    with pytest.raises(InvalidQueryError):
        index.search("tea", view={"user_id": "u"})
    with pytest.raises(InvalidFilterError, match=r"\$regex"):
        index.search("tea", filters={"x": {"$regex": "t"}})
    for bad in ({"offset": -1}, {"offset": True}, {"threshold": "high"},
                {"threshold": float("nan")}):
        with pytest.raises(InvalidQueryError):
            index.search("tea", **bad)


# -- the property: a view search never returns another user's, agent's or run's memory --

VALUES = st.sampled_from([None, "x", "y"])
scopes = st.fixed_dictionaries({"app_id": VALUES, "user_id": VALUES, "agent_id": VALUES,
                                "run_id": VALUES})
WORDS = ("tea", "coffee", "deploy", "friday")


@settings(max_examples=40)
@given(memories=st.lists(st.tuples(scopes, st.sampled_from(WORDS)), max_size=20),
       view_scope=scopes.filter(lambda s: any(v is not None for v in s.values())),
       query=st.sampled_from(WORDS))
def test_a_view_search_returns_only_and_all_visible_memories(
        memories: list[tuple[dict[str, Any], str]], view_scope: dict[str, Any],
        query: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            Replica.open(Path(tmp) / "r", replica_id="r", durable=False) as replica:
        ids = {replica.add(text, **scope): scope for scope, text in memories}
        view = replica.view(**view_scope)
        expected = {mid for mid, mem in ids.items()
                    if any(v is not None for v in mem.values())
                    and all(v is None or v == view_scope[k] for k, v in mem.items())}
        hits = SemanticIndex(replica, HashingEmbedder()).search(query, 50, view=view)
        assert {h.id for h in hits} == expected
        assert {h.id for h in hits} == {r.id for r in view.list()}

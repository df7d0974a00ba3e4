"""SemanticIndex: ranking, scope filters, incremental updates and the embedding cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from replica_helpers import Clock, sync_pair

from memmesh.semantic import (
    HashingEmbedder,
    InvalidQueryError,
    ScoreWeights,
    SemanticIndex,
)
from memmesh.semantic._scoring import DAY_MS

Opener = Callable[..., Any]


def index_for(replica: Any, clock: Clock, **options: Any) -> SemanticIndex:
    return SemanticIndex(replica, HashingEmbedder(), clock=clock, **options)


def test_search_finds_the_closest_memory_and_explains_its_score(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    tea = replica.add("the user prefers green tea in the morning", user_id="u1", actor="a")
    replica.add("the deploy runs on friday", user_id="u1", actor="a")
    replica.add("buy oat milk", user_id="u1", actor="a")
    hits = index_for(replica, clock).search("green tea in the morning", k=2, user_id="u1")
    assert hits[0].record.id == tea
    assert len(hits) == 2
    best = hits[0]
    assert best.text == "the user prefers green tea in the morning"
    assert best.parts.total == pytest.approx(best.score, abs=1e-5)
    assert best.parts.similarity == pytest.approx(best.similarity)
    assert hits[0].score >= hits[1].score


def test_scope_filters_match_by_equality_and_unknown_filters_are_errors(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    mine = replica.add("likes tea", user_id="u1", app_id="app")
    theirs = replica.add("likes tea", user_id="u2", app_id="app")
    unscoped = replica.add("likes tea")
    index = index_for(replica, clock)
    assert [h.id for h in index.search("tea", user_id="u1")] == [mine]
    assert [h.id for h in index.search("tea", user_id="u2", app_id="app")] == [theirs]
    assert [h.id for h in index.search("tea", user_id=None, app_id=None)] == [unscoped]
    assert {h.id for h in index.search("tea")} == {mine, theirs, unscoped}
    assert index.search("tea", user_id="nobody") == []
    with pytest.raises(InvalidQueryError):
        index.search("tea", users="u1")
    with pytest.raises(InvalidQueryError):
        index.search("tea", k=0)


def test_newer_memory_ranks_first_when_texts_are_equal(open_replica: Opener, clock: Clock) -> None:
    replica = open_replica("r1")
    old = replica.add("standup is at 10am", user_id="u1")
    clock.advance(3 * DAY_MS)
    new = replica.add("standup is at 10am", user_id="u1")
    hits = index_for(replica, clock).search("standup is at 10am", user_id="u1")
    assert [h.id for h in hits] == [new, old]
    assert hits[0].parts.recency > hits[1].parts.recency
    assert hits[0].similarity == pytest.approx(hits[1].similarity)


def test_trusted_actor_and_confident_writer_rank_first(open_replica: Opener, clock: Clock) -> None:
    replica = open_replica("r1")
    intern = replica.add("the api key rotates monthly", user_id="u1", actor="intern")
    lead = replica.add("the api key rotates monthly", user_id="u1", actor="lead")
    weights = ScoreWeights(actor_trust={"lead": 1.0, "intern": 0.1})
    hits = index_for(replica, clock, weights=weights).search("api key rotation", user_id="u1")
    assert [h.id for h in hits] == [lead, intern]
    unsure = replica.add("backups run nightly", user_id="u2", confidence=0.3)
    sure = replica.add("backups run nightly", user_id="u2", confidence=0.9)
    hits = index_for(replica, clock).search("backups run nightly", user_id="u2")
    assert [h.id for h in hits] == [sure, unsure]


def test_similarity_outweighs_recency_with_default_weights(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    relevant = replica.add("the wifi password is hunter2", user_id="u1")
    clock.advance(60 * DAY_MS)
    replica.add("lunch is pizza today", user_id="u1")
    hits = index_for(replica, clock).search("what is the wifi password", user_id="u1")
    assert hits[0].id == relevant


def test_index_follows_local_updates_deletes_forgets_and_expiry(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    index = index_for(replica, clock)
    assert index.search("anything") == []
    memory = replica.add("meeting on monday", user_id="u1")
    short = replica.add("temporary door code 4411", user_id="u1", ttl=60)
    assert index.search("meeting on monday", user_id="u1")[0].id == memory
    replica.update(memory, "meeting moved to thursday")
    hits = index.search("meeting moved to thursday", user_id="u1")
    assert hits[0].id == memory and hits[0].text == "meeting moved to thursday"
    assert index.search("temporary door code", k=1, user_id="u1")[0].id == short
    clock.advance(60_001)
    assert short not in {h.id for h in index.search("temporary door code", user_id="u1")}
    replica.delete(memory)
    assert index.search("meeting", user_id="u1") == []
    kept = replica.add("forget me please", user_id="u1")
    assert index.search("forget me please", user_id="u1")[0].id == kept
    replica.forget(kept)
    assert index.search("forget me please", user_id="u1") == []
    assert index.rescans == 1


def test_index_picks_up_memories_merged_from_a_peer(open_replica: Opener, clock: Clock) -> None:
    a, b = open_replica("r1"), open_replica("r2")
    index = index_for(b, clock)
    assert index.search("kafka") == []
    remote = a.add("the event bus is kafka", user_id="u1", actor="remote-agent")
    sync_pair(a, b)
    hits = index.search("which event bus", user_id="u1")
    assert [h.id for h in hits] == [remote]
    assert hits[0].version.actor == "remote-agent"


def test_conflicted_memory_is_found_by_either_version_and_listed_once(
    open_replica: Opener, clock: Clock
) -> None:
    a, b = open_replica("r1"), open_replica("r2")
    memory = a.add("the release is on friday", user_id="u1")
    sync_pair(a, b)
    a.update(memory, "the release is on friday evening")
    b.update(memory, "the release moved to monday")
    sync_pair(a, b)
    index = index_for(b, clock)
    assert b.get(memory).conflicted
    for query in ("release friday evening", "release moved to monday"):
        hits = index.search(query, user_id="u1")
        assert [h.id for h in hits] == [memory]
    hits = index.search("release moved to monday", user_id="u1")
    assert hits[0].text == "the release moved to monday"


def test_each_text_is_embedded_once_and_a_restart_embeds_nothing(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    for i in range(20):
        replica.add(f"note number {i % 10}", user_id="u1")
    index = index_for(replica, clock)
    assert len(index) == 20
    assert index.embedder.embedded == 10
    replica.add("note number 3", user_id="u2")
    index.refresh()
    assert index.embedder.embedded == 10
    restarted = index_for(replica, clock)
    assert len(restarted.search("note number 7", k=30)) == 21
    assert restarted.embedder.embedded == 0


def test_incremental_refresh_rereads_only_changed_memories(
    open_replica: Opener, clock: Clock
) -> None:
    replica = open_replica("r1")
    ids = [replica.add(f"fact {i}", user_id="u1") for i in range(30)]
    index = index_for(replica, clock)
    index.refresh()
    before = index.reindexed
    replica.update(ids[3], "fact three, revised")
    replica.add("fact new", user_id="u1")
    assert index.refresh() == 2
    assert index.reindexed - before == 2
    assert index.rescans == 1


def test_a_truncated_journal_makes_the_index_rescan(
    open_replica: Opener, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memmesh.storage import _journal as journal

    monkeypatch.setattr(journal, "JOURNAL_MAX", 4)
    replica = open_replica("r1")
    doomed = replica.add("old note about kafka", user_id="u1")
    index = index_for(replica, clock)
    index.refresh()
    replica.delete(doomed)
    fresh = [replica.add(f"new note {i} about kafka", user_id="u1") for i in range(12)]
    hits = index.search("note about kafka", k=50, user_id="u1")
    assert index.rescans == 2
    assert sorted(h.id for h in hits) == sorted(fresh)


def test_sets_and_bad_queries_never_reach_the_index(open_replica: Opener, clock: Clock) -> None:
    replica = open_replica("r1")
    index = index_for(replica, clock)
    index.refresh()
    replica.set_add("tasks", "write the tests", user_id="u1")
    memory = replica.add("write the tests", user_id="u1")
    assert [h.id for h in index.search("write the tests")] == [memory]
    for bad in ({"query": 42}, {"query": "x", "k": True}, {"query": "x", "user_id": 7}):
        with pytest.raises(InvalidQueryError):
            index.search(**bad)

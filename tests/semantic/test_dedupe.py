"""Near-duplicate adds become NOOPs; concurrent near-duplicates merge after sync."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from replica_helpers import Clock, sync_all

from memmesh.semantic import HashingEmbedder, SemanticIndex, SentenceTransformerEmbedder
from memmesh.storage import Replica

Opener = Callable[..., Any]
needs_noop_hook = pytest.mark.skipif(
    not hasattr(Replica, "record_noop"),
    reason="storage does not expose replica.record_noop(memory_id, *, actor, detail) yet",
)


def index_for(replica: Any, clock: Clock) -> SemanticIndex:
    return SemanticIndex(replica, HashingEmbedder(), clock=clock)


@pytest.fixture
def indexed(open_replica: Opener, clock: Clock) -> tuple[Any, SemanticIndex]:
    """Replica ``r1`` and a hashing index over it."""
    replica = open_replica("r1")
    return replica, index_for(replica, clock)


def test_dedupe_add_returns_the_existing_memory_in_the_same_scope(
    indexed: tuple[Any, SemanticIndex],
) -> None:
    replica, index = indexed
    first = index.add("the user prefers green tea", user_id="u1", actor="a", dedupe=True)
    again = index.add("The user prefers green tea!", user_id="u1", actor="b", dedupe=True)
    assert again == first
    assert len(replica.list(user_id="u1")) == 1


def test_dedupe_never_crosses_scope_or_tier_and_respects_the_threshold(
    indexed: tuple[Any, SemanticIndex],
) -> None:
    _, index = indexed
    first = index.add("the user prefers green tea", user_id="u1", dedupe=True)
    other_user = index.add("the user prefers green tea", user_id="u2", dedupe=True)
    narrower = index.add("the user prefers green tea", user_id="u1", agent_id="g", dedupe=True)
    private = index.add("the user prefers green tea", user_id="u1", tier="private", dedupe=True)
    different = index.add("the user prefers black coffee", user_id="u1", dedupe=True)
    plain = index.add("the user prefers green tea", user_id="u1")
    ids = [first, other_user, narrower, private, different, plain]
    assert len(set(ids)) == len(ids)


@needs_noop_hook
def test_dedupe_records_a_noop_event_on_the_existing_memory(
    indexed: tuple[Any, SemanticIndex],
) -> None:
    replica, index = indexed
    first = index.add("standup is at ten", user_id="u1", dedupe=True)
    index.add("standup is at ten.", user_id="u1", actor="bot", dedupe=True)
    ops = [event.op for event in replica.history(first)]
    assert ops == ["ADD", "NOOP"]
    assert replica.history(first)[-1].actor == "bot"


def test_concurrent_near_duplicates_merge_to_the_same_memory_everywhere(
    open_replica: Opener, clock: Clock
) -> None:
    a, b, c = open_replica("r1"), open_replica("r2"), open_replica("r3")
    first = a.add("the office wifi is called meshnet", user_id="u1")
    clock.advance(10)
    b.add("The office wifi is called meshnet.", user_id="u1")
    c.add("the office wifi is called meshnet", user_id="u2")  # another scope: stays
    c.add("lunch is at noon", user_id="u1")
    sync_all([a, b, c])
    for replica in (a, b):
        merged = index_for(replica, clock).merge_near_duplicates(threshold=0.9)
        assert [kept for kept, _ in merged] == [first]
    sync_all([a, b, c])
    for replica in (a, b, c):
        texts = sorted(r.text for r in replica.list(user_id="u1"))
        assert texts == ["lunch is at noon", "the office wifi is called meshnet"]
        assert len(replica.list(user_id="u2")) == 1
    assert index_for(c, clock).merge_near_duplicates(threshold=0.9) == []


def test_a_merged_duplicate_is_deleted_by_the_merging_actor_naming_the_survivor(
    open_replica: Opener, clock: Clock
) -> None:
    a, b = open_replica("r1"), open_replica("r2")
    first = a.add("the office wifi is called meshnet", user_id="u1")
    clock.advance(10)
    dropped = b.add("The office wifi is called meshnet.", user_id="u1")
    sync_all([a, b])
    assert index_for(a, clock).merge_near_duplicates(
        threshold=0.9, actor="curator") == [(first, dropped)]
    sync_all([a, b])
    for replica in (a, b):
        last = replica.history(dropped)[-1]
        assert (last.op, last.actor) == ("DELETE", "curator")
        assert dict(last.detail) == {"reason": "near-duplicate", "merged_into": first}


@pytest.mark.model
def test_dedupe_with_the_real_model_catches_paraphrases_only(
    open_replica: Opener, clock: Clock, model_embedder: SentenceTransformerEmbedder
) -> None:
    replica = open_replica("r1")
    index = SemanticIndex(replica, model_embedder, clock=clock)
    first = index.add("The user is allergic to peanuts.", user_id="u1", dedupe=True, threshold=0.8)
    same = index.add("User has a peanut allergy.", user_id="u1", dedupe=True, threshold=0.8)
    other = index.add("The user is allergic to cats.", user_id="u1", dedupe=True, threshold=0.8)
    assert same == first
    assert other != first

"""Search quality with the real model on the labelled set (see labelled_set.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from labelled_set import MEMORIES, QUERIES, TOP1_BAR
from replica_helpers import Clock

from memmesh.semantic import SemanticIndex, SentenceTransformerEmbedder

pytestmark = pytest.mark.model


def test_top1_accuracy_on_the_labelled_set_clears_the_bar(
    open_replica: Callable[..., Any], clock: Clock, model_embedder: SentenceTransformerEmbedder
) -> None:
    replica = open_replica("r1")
    ids = {}
    with replica.batch():
        for key, (user, text) in MEMORIES.items():
            ids[replica.add(text, user_id=user, actor="assistant")] = key
    index = SemanticIndex(replica, model_embedder, clock=clock)
    misses = []
    for user, query, expected in QUERIES:
        hits = index.search(query, k=3, user_id=user)
        assert all(hit.record.user_id == user for hit in hits)
        if not hits or ids[hits[0].id] != expected:
            misses.append((query, expected, [ids[h.id] for h in hits]))
    accuracy = 1 - len(misses) / len(QUERIES)
    assert accuracy >= TOP1_BAR, f"top-1 accuracy {accuracy:.2f}; misses: {misses}"


def test_unscoped_search_finds_the_right_user_by_meaning(
    open_replica: Callable[..., Any], clock: Clock, model_embedder: SentenceTransformerEmbedder
) -> None:
    replica = open_replica("r1")
    for user, text in MEMORIES.values():
        replica.add(text, user_id=user)
    index = SemanticIndex(replica, model_embedder, clock=clock)
    hit = index.search("Who owns a dog?", k=1)[0]
    assert hit.record.user_id == "bob" and "Biscuit" in hit.text

"""Exact search ranks like a plain numpy scan of the live rows, on both of its paths.

The index scores every row at once when the filter keeps many (unscoped: one
matrix-vector product, excluded rows at -inf) and gathers the kept rows otherwise; both
must return exactly the numpy ranking of the live, unexpired rows in scope, in order,
whatever was deleted, forgotten or expired in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from replica_helpers import Clock, sync_pair
from vector_table import VectorTable

from memmesh.semantic import InvalidQueryError, ScoreWeights, SemanticIndex

SIMILARITY_ONLY = ScoreWeights(recency=0.0, confidence=0.0, trust=0.0)


def _populated(open_replica: Callable[..., Any], clock: Clock, n: int = 300
               ) -> tuple[Any, VectorTable, dict[int, str], SemanticIndex]:
    table = VectorTable(n)
    replica = open_replica("r1")
    ids: dict[int, str] = {}
    with replica.batch():
        for i in range(n):
            ids[i] = replica.add(f"v{i} fact", user_id=f"u{i % 4}",
                                 ttl=1.0 if i % 11 == 0 else None)
    index = SemanticIndex(replica, table, weights=SIMILARITY_ONLY)
    index.refresh()
    for i in range(0, n, 7):
        replica.delete(ids.pop(i))
    for i in range(3, n, 13):
        if i in ids:
            replica.forget(ids.pop(i))
    clock.advance(2_000)  # every 11th memory expires
    live = {i: mid for i, mid in ids.items() if i % 11}
    return replica, table, live, index


@pytest.mark.parametrize("scope", [{}, {"user_id": "u1"}])
def test_search_returns_the_numpy_ranking_of_the_live_rows_in_scope(
    open_replica: Callable[..., Any], clock: Clock, scope: dict[str, str]
) -> None:
    _, table, live, index = _populated(open_replica, clock)
    wanted = [i for i in live if not scope or f"u{i % 4}" == scope["user_id"]]
    rng = np.random.default_rng(5)
    for _ in range(10):
        query = rng.standard_normal(table.table.shape[1]).astype(np.float32)
        query /= np.linalg.norm(query)
        hits = index.search_vector(query, 10, **scope)
        assert [table.row(h.text) for h in hits] == table.exact_top(query, wanted, 10)


def test_a_k_beyond_the_live_rows_returns_every_live_row_and_nothing_else(
    open_replica: Callable[..., Any], clock: Clock
) -> None:
    _, table, live, index = _populated(open_replica, clock, n=60)
    hits = index.search_vector(table.table[1], 500)
    assert sorted(h.id for h in hits) == sorted(live.values())


def test_on_an_untouched_replica_every_row_is_scored_and_conflicts_count_once(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(80)
    a, b = open_replica("r1"), open_replica("r2")
    ids = [a.add(f"v{i} fact") for i in range(40)]
    sync_pair(a, b)
    a.update(ids[0], "v50 edit on r1")
    b.update(ids[0], "v51 edit on r2")
    sync_pair(a, b)
    index = SemanticIndex(b, table, weights=SIMILARITY_ONLY)
    index.refresh()
    assert b.get(ids[0]).conflicted
    query = table.table[51]
    hits = index.search_vector(query, 41)
    assert [h.id for h in hits].count(ids[0]) == 1
    assert hits[0].id == ids[0] and hits[0].text == "v51 edit on r2"
    assert [table.row(h.text) for h in hits[1:]] == table.exact_top(
        query, [i for i in range(1, 40)], 40)


def test_a_changed_memory_is_never_served_from_an_earlier_search(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(20)
    replica = open_replica("r1")
    memory = replica.add("v3 first text", user_id="u1")
    index = SemanticIndex(replica, table, weights=SIMILARITY_ONLY)
    assert index.search_vector(table.table[3], 1)[0].text == "v3 first text"
    replica.update(memory, "v3 second text")
    assert index.search_vector(table.table[3], 1)[0].text == "v3 second text"
    replica.delete(memory)
    assert index.search_vector(table.table[3], 1) == []


def test_a_hit_served_from_the_record_cache_explains_its_score_at_the_query_time(
    open_replica: Callable[..., Any], clock: Clock
) -> None:
    table = VectorTable(20)
    replica = open_replica("r1")
    replica.add("v3 a fact", user_id="u1", confidence=0.8, actor="lead")
    weights = ScoreWeights(half_life_ms=1_000, actor_trust={"lead": 0.9})
    index = SemanticIndex(replica, table, weights=weights)
    first = index.search_vector(table.table[3], 1)[0]
    clock.advance(1_000)  # one half-life: the cached record's recency part must halve
    again = index.search_vector(table.table[3], 1)[0]
    assert again.record is first.record  # served from the cache
    assert again.parts.recency == pytest.approx(first.parts.recency / 2)
    assert (again.parts.confidence, again.parts.trust) == pytest.approx((0.1 * 0.8, 0.1 * 0.9))
    for hit in (first, again):
        assert hit.parts.total == pytest.approx(hit.score, abs=1e-5)


@pytest.mark.parametrize("bad", [np.zeros(5, dtype=np.float32), np.zeros((2, 16)),
                                 np.full(32, np.nan), ["a"] * 16, None])
def test_a_query_vector_of_the_wrong_shape_or_values_is_a_typed_error(
    open_replica: Callable[..., Any], bad: Any
) -> None:
    table = VectorTable(16)
    replica = open_replica("r1")
    replica.add("v3 a fact")
    index = SemanticIndex(replica, table, weights=SIMILARITY_ONLY)
    with pytest.raises(InvalidQueryError):
        index.search_vector(bad, 3)


def test_a_float64_query_ranks_as_its_float32_cast(
    open_replica: Callable[..., Any], clock: Clock
) -> None:
    _, table, live, index = _populated(open_replica, clock, n=60)
    query = np.random.default_rng(3).standard_normal(table.table.shape[1])
    query /= np.linalg.norm(query)
    hits = index.search_vector(query, 10)
    assert [table.row(h.text) for h in hits] == table.exact_top(
        query.astype(np.float32), list(live), 10)

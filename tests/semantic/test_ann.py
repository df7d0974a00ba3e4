"""The approximate index (extra ``ann``): results agree with exact search, every filter
stays exact, deletes and forgets never come back, it follows the journal and a restart
reloads its file. Skipped without faiss, except the missing-extra error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vector_table import VectorTable

from memmesh.semantic import AnnConfig, MissingDependencyError, ScoreWeights, SemanticIndex

SIMILARITY_ONLY = ScoreWeights(recency=0.0, confidence=0.0, trust=0.0)
SMALL = AnnConfig(min_rows=0, m=16, ef_search=64, save_every=1)
needs_faiss = pytest.mark.skipif("faiss" not in sys.modules and
                                 __import__("importlib").util.find_spec("faiss") is None,
                                 reason="the ann extra (faiss-cpu) is not installed")


def _index(replica: Any, table: VectorTable, config: AnnConfig = SMALL) -> SemanticIndex:
    return SemanticIndex(replica, table, weights=SIMILARITY_ONLY, ann=config)


def _queries(table: VectorTable, count: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    out = []
    for _ in range(count):
        q = rng.standard_normal(table.table.shape[1]).astype(np.float32)
        out.append(q / np.linalg.norm(q))
    return out


def _fill(replica: Any, n: int) -> dict[int, str]:
    with replica.batch():
        return {i: replica.add(f"v{i} fact", user_id=f"u{i % 5}") for i in range(n)}


def test_ann_without_the_extra_is_one_typed_error_naming_it(
    open_replica: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'memmesh\[ann\]'"):
        SemanticIndex(open_replica("r1"), VectorTable(4), ann=True)


@needs_faiss
def test_results_agree_with_exact_search_unscoped_and_scoped(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(600, clusters=8)
    replica = open_replica("r1")
    _fill(replica, 600)
    approx, exact = _index(replica, table), SemanticIndex(replica, table,
                                                          weights=SIMILARITY_ONLY)
    found = total = 0
    for q in _queries(table):
        for scope in ({}, {"user_id": "u2"}):
            want = {h.id for h in exact.search_vector(q, 10, **scope)}
            got = approx.search_vector(q, 10, **scope)
            assert all(h.record.user_id == scope.get("user_id", h.record.user_id)
                       for h in got)
            found += len(want & {h.id for h in got})
            total += len(want)
    assert approx.ann is not None and approx.ann.builds == 1
    assert found / total >= 0.95


@needs_faiss
def test_deleted_and_forgotten_memories_never_return_and_new_ones_are_found(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(500)
    replica = open_replica("r1")
    ids = _fill(replica, 300)
    index = _index(replica, table)
    assert index.search_vector(table.table[7], 1)[0].id == ids[7]
    replica.delete(ids[7])
    replica.forget(ids[8])
    for row in (7, 8):
        assert all(h.id not in (ids[7], ids[8])
                   for h in index.search_vector(table.table[row], 20))
    new = replica.add("v400 arrived later", user_id="u1")
    assert index.search_vector(table.table[400], 1)[0].id == new
    assert index.ann is not None and index.ann.builds == 1  # added, not rebuilt


@needs_faiss
def test_a_graph_of_mostly_dead_labels_is_rebuilt(open_replica: Callable[..., Any]) -> None:
    table = VectorTable(300)
    replica = open_replica("r1")
    ids = _fill(replica, 200)
    index = _index(replica, table)
    index.search_vector(table.table[0], 5)
    for i in range(0, 120):
        replica.delete(ids[i])
    hits = index.search_vector(table.table[150], 5)
    assert hits[0].id == ids[150]
    assert index.ann is not None and index.ann.builds == 2
    assert index.ann.label_row.shape[0] == 80


@needs_faiss
def test_a_restarted_index_reloads_the_file_and_adds_only_what_changed(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(500)
    replica = open_replica("r1")
    ids = _fill(replica, 300)
    _index(replica, table).search_vector(table.table[1], 3)
    assert list(Path(replica.path).glob("ann-*.faiss"))
    replica.delete(ids[5])
    later = replica.add("v450 after the save", user_id="u0")
    restarted = _index(replica, table)
    assert restarted.search_vector(table.table[450], 1)[0].id == later
    assert all(h.id != ids[5] for h in restarted.search_vector(table.table[5], 10))
    assert restarted.ann is not None and restarted.ann.loaded and restarted.ann.builds == 0
    assert restarted.ann.label_row.shape[0] == 301


@needs_faiss
def test_an_encrypted_replica_keeps_the_graph_in_memory_only(
    open_replica: Callable[..., Any]
) -> None:
    table = VectorTable(200)
    replica = open_replica("r1", at_rest_key=bytes(range(32)))
    _fill(replica, 100)
    index = _index(replica, table)
    assert index.search_vector(table.table[1], 3)[0].text == "v1 fact"
    assert index.ann is not None and index.ann.path is None
    assert not list(Path(replica.path).glob("ann-*"))

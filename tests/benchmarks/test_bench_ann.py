"""``bench_ann`` on a small replica: what it measures and the report rows it becomes.

No timing is asserted (the machine is shared and noisy): the approximate index is
compared with exact search on the same index, scope and deletes must stay exact, and the
journal sync after churn must not rebuild the graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from memmesh.benchmarks.bench_ann import bench_ann
from memmesh.benchmarks.report import _ann_rows
from memmesh.semantic import AnnConfig

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("faiss") is None,
                                 reason="the ann extra (faiss-cpu) is not installed")]


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    config = AnnConfig(min_rows=0, m=16, ef_construction=40, ef_search=64)
    return bench_ann(2_000, 8, tmp_path_factory.mktemp("ann"), config)


def test_scope_and_deletes_stay_exact_and_the_journal_sync_does_not_rebuild(
    figures: dict[str, object]
) -> None:
    scoped, incremental = figures["scoped"], figures["incremental"]
    assert isinstance(scoped, dict) and isinstance(incremental, dict)
    assert scoped["hits_outside_scope"] == 0
    assert incremental["deleted"] == incremental["added"] == 20
    assert incremental["deleted_returned"] == 0
    assert incremental["rebuilt"] is False


def test_recall_is_measured_against_exact_search_on_both_query_sets(
    figures: dict[str, object]
) -> None:
    for key in ("unscoped", "scoped", "random_queries"):
        part = figures[key]
        assert isinstance(part, dict)
        assert 0.0 <= part["recall_at_10"] <= 1.0
        assert part["ann_ms"] > 0 and part["exact_ms"] > 0
    unscoped = figures["unscoped"]
    assert isinstance(unscoped, dict) and unscoped["recall_at_10"] >= 0.8


def test_the_report_rows_carry_the_issue_targets(figures: dict[str, object]) -> None:
    rows = {row.name.split(" — ")[0]: row for row in _ann_rows({"ann": figures})}
    latency = rows["`ann=True` top-10 (HNSW, faiss), 2,000 embedding-like memories"]
    assert latency.target is not None and latency.target.limit == 5.0
    recall = rows["`ann=True` recall@10, 2,000 memories"]
    assert recall.target is not None and recall.target.limit == 0.95
    assert recall.ratio == recall.value  # against exact search's recall of 1
    violations = rows["`ann=True` hits outside the scope or deleted, 2,000"]
    assert violations.value == 0 and violations.met is True


def test_no_rows_without_the_extra(tmp_path: Path) -> None:
    assert _ann_rows({"ann": {"memories": 5, "skipped": "no faiss"}}) == []
    assert _ann_rows({}) == []

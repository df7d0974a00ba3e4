"""``memmesh bench`` end to end on tiny sizes: the report's files, schema and arithmetic.

No timing is asserted (the machine is shared and noisy): only that every figure was
measured, that each ratio is value / baseline, that ``met`` follows the target, and that
the table, JSON and plots are written.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from memmesh.benchmarks import run as bench_run
from memmesh.benchmarks.rows import FIELDS, Row, Target, markdown
from memmesh.benchmarks.sizes import QUICK, TINY

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    out = tmp_path_factory.mktemp("bench-out")
    rows = bench_run.run_sizes(TINY, out, out / "rows.json")
    return rows, out


def test_rows_follow_the_json_schema(tiny_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, out = tiny_run
    assert json.loads((out / "rows.json").read_text()) == rows
    assert json.loads((out / "report.json").read_text()) == rows
    for row in rows:
        assert tuple(row) == FIELDS
        assert isinstance(row["name"], str) and row["name"]
        assert isinstance(row["unit"], str) and row["unit"]
        assert isinstance(row["value"], float | int) and math.isfinite(row["value"])
        assert row["baseline"] is None or isinstance(row["baseline"], float | int)
        assert row["target"] is None or isinstance(row["target"], str)
        assert row["met"] in (True, False, None)
        assert (row["met"] is None) == (row["target"] is None)


def test_ratio_is_value_over_baseline(tiny_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, _ = tiny_run
    with_baseline = [r for r in rows if r["baseline"] is not None]
    assert len(with_baseline) >= len(rows) - 2  # only the p50/p99 latencies have none
    for row in rows:
        if row["baseline"] is None:
            assert row["ratio"] is None
        else:
            assert row["ratio"] == pytest.approx(row["value"] / row["baseline"], rel=1e-12)


def test_every_issue_figure_is_reported(tiny_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, _ = tiny_run
    names = " | ".join(r["name"] for r in rows)
    for figure in ("durable add", "batched add", "get,", "list by user scope", "sync bytes",
                   "Yjs state-vector diff", "`sync_apply`", "scoped search top-10",
                   "embed throughput", "peak RSS", "priority write", "simulated rounds",
                   "digest repair of 1 diverged key", "forged claim",
                   "signed memories, every proof checked", "encrypted at rest"):
        assert figure in names, figure
    searches = [r for r in rows if r["name"].startswith("scoped search top-10, ")]
    assert len(searches) == len(TINY.search_ns)


def test_table_and_plots_are_written(tiny_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, out = tiny_run
    table = (out / "report.md").read_text().splitlines()
    assert table[0] == "| figure | memmesh | baseline | ratio | target | met |"
    assert len(table) == 2 + len(rows)
    for line, row in zip(table[2:], rows, strict=True):
        assert line.startswith(f"| {row['name']} |")
    for name in ("sync_bytes_vs_k.png", "search_latency_vs_n.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = json.loads((out / "raw.json").read_text())
    assert [p["k"] for p in raw["sync"]["curve"]] == list(TINY.sync_ks)
    assert raw["spread"]["reached"] == TINY.sim_nodes


def test_met_follows_the_target_side_and_bound() -> None:
    assert Row("x", 9.0, "B", 10.0, Target("ratio", "<=", 1.2)).met is True
    assert Row("x", 13.0, "B", 10.0, Target("ratio", "<=", 1.2)).met is False
    assert Row("x", 50_000.0, "/s", 1e6, Target("value", ">=", 100_000)).met is False
    assert Row("x", 150_000.0, "/s", 1e3, Target("value", ">=", 100_000)).met is True
    assert Row("x", float("nan"), "rounds", 8.0, Target("value", "<=", 10)).met is None
    assert Row("x", 1.0, "ms").met is None


def test_a_zero_or_missing_baseline_gives_no_ratio() -> None:
    assert Row("x", 1.0, "ms", 0.0).as_json()["ratio"] is None
    row = Row("x", float("inf"), "adds/s", 5.0).as_json()
    assert row["value"] is None and row["ratio"] is None
    assert "| x | 1.00 ms | – | – |  |  |" in markdown([Row("x", 1.0, "ms")])


def test_quick_flag_selects_the_quick_sizes(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(bench_run, "run_sizes", lambda *a: calls.append(a) or [])
    assert bench_run.main(["--quick", "--json", str(tmp_path / "r.json"),
                           "--out", str(tmp_path)]) == 0
    assert calls == [(QUICK, tmp_path, tmp_path / "r.json", None)]
    parser = argparse.ArgumentParser()
    bench_run.add_parser(parser.add_subparsers())
    args = parser.parse_args(["bench"])
    assert args.func is bench_run.run and args.quick is False

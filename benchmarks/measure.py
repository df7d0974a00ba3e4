"""Run every measurement of the head-to-head report and return the raw figures.

Each section calls a layer benchmark's own measuring function (``bench_storage``,
``bench_reads``, ``bench_yjs``, ``bench_crdt``, ``bench_semantic``, ``bench_gossip``,
``bench_repair``, ``bench_ann``)
or the simulator's public runner; nothing is re-measured here.  The result is a plain
JSON-able dict (written as ``raw.json``); ``report.build_rows`` turns it into rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from memmesh.benchmarks.sizes import Sizes

# The RSS subprocess: builds N memories and measures a fresh process serving them.
RSS_SCRIPT = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "from memmesh.benchmarks.bench_storage import bench_rss\n"
    "print(json.dumps(bench_rss(Path(sys.argv[1]), int(sys.argv[2]))))\n"
)


def _storage(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks import bench_storage

    return {"durable": bench_storage.bench_durable(root, s.durable_adds),
            "batched": bench_storage.bench_batched(root, s.batched_adds)}


def _reads(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_reads import read_rates
    from memmesh.benchmarks.bench_storage import build_source

    replica, ids = build_source(root / "reads-src", s.records, metadata=True)
    with replica:
        figures: dict[str, Any] = read_rates(replica, ids, root, s.read_samples)
    return figures


def _sync(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_yjs import sync_curve

    return asdict(sync_curve(root, s.records, s.sync_ks))


def _apply(root: Path, s: Sizes) -> dict[str, Any]:
    """``sync_apply`` into an empty and into a populated replica (issue 17), wall and CPU
    rates, and the sync bytes with ``history_limit=0``."""
    from memmesh.benchmarks.bench_storage import bench_sync

    work = root / "apply"
    work.mkdir()
    return {"default": bench_sync(work, s.records, 100),
            "history_limit_0": bench_sync(work, s.records, 100, history_limit=0)}


def _codec(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_crdt import bench_orset

    row = bench_orset(s.crdt_elements, 3)[0]
    return asdict(row)


def _search(root: Path, s: Sizes) -> list[dict[str, Any]]:
    from memmesh.benchmarks.bench_semantic import bench_search

    out = []
    for n in s.search_ns:
        work = root / f"search-{n}"
        work.mkdir()
        out.append(bench_search(n, s.search_queries, work))
        shutil.rmtree(work, ignore_errors=True)
    return out


def _ann(root: Path, s: Sizes) -> dict[str, Any]:
    """The approximate index (extra ``ann``; skipped without it): 200k memories in the
    full run (its HNSW build takes minutes on 2 cores), 20k quick, a few hundred tiny
    (with the graph used from the first row)."""
    from memmesh.benchmarks.bench_ann import bench_ann
    from memmesh.semantic import AnnConfig

    n, queries = {"full": (200_000, 30), "quick": (20_000, 20)}.get(s.mode, (600, 5))
    config = None if s.mode in ("full", "quick") else AnnConfig(min_rows=0, m=16,
                                                                ef_construction=40)
    work = root / "ann"
    work.mkdir()
    figures = bench_ann(n, queries, work, config)
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _embedding(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_semantic import bench_embedding

    figures: dict[str, Any] = bench_embedding(s.embed_texts, s.embed_repeat)
    return figures


def _rss(root: Path, s: Sizes) -> dict[str, Any]:
    work = root / "rss-run"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(work), str(s.rss_memories)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the RSS subprocess failed:\n{done.stderr}")
    out = done.stdout
    shutil.rmtree(work, ignore_errors=True)
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def _repair(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_repair import bench_repair

    return bench_repair(root, s.repair_memories)


def _propagation(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_gossip import bench_propagation

    work = root / "propagation"
    work.mkdir()
    figures: dict[str, Any] = bench_propagation(work, s.gossip_processes, s.gossip_samples)
    return figures


def _spread(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.simulations import SimOptions, run_scenario
    from memmesh.simulations.spread import epidemic_bound

    report = run_scenario("spread", SimOptions(nodes=s.sim_nodes), plots=False)
    spread = report["spread"]
    return {"nodes": s.sim_nodes, "rounds_to_reach_all": spread["rounds_to_reach_all"],
            "reached": spread["reached"], "epidemic_bound_rounds": epidemic_bound(s.sim_nodes),
            "converged": report["converged"]}


def _at_rest(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_at_rest import run

    n, searches = (2_000, 200) if s.mode == "full" else (200, 20)
    return run(n, searches, root)


def _signed(root: Path, s: Sizes) -> dict[str, Any]:
    from memmesh.benchmarks.bench_signed import bench_adds, bench_sync

    n, adds, batch = {"full": (20_000, 200, 10_000), "quick": (2_000, 30, 1_000)}.get(
        s.mode, (300, 10, 100))
    work = root / "signed"
    work.mkdir()
    return {"sync_apply": bench_sync(work, n), "durable_add": bench_adds(work, adds, batch=False),
            "batched_add": bench_adds(work, batch, batch=True)}


SECTIONS: dict[str, Callable[[Path, Sizes], Any]] = {
    "storage": _storage, "reads": _reads, "sync": _sync, "apply": _apply, "codec": _codec,
    "search": _search, "ann": _ann, "embedding": _embedding, "rss": _rss, "repair": _repair,
    "propagation": _propagation, "spread": _spread, "at_rest": _at_rest,
    "signed": _signed,
}


def measure(s: Sizes, root: Path, log: Callable[[str], None] | None = None
            ) -> dict[str, Any]:
    """Every section in turn on scratch directory ``root``; the raw figures."""
    results: dict[str, Any] = {"mode": s.mode, "sizes": asdict(s),
                               "python": sys.version.split()[0], "cpus": os.cpu_count(),
                               "load_average_at_start": [round(x, 2)
                                                         for x in os.getloadavg()]}
    seconds: dict[str, float] = {}
    for name, section in SECTIONS.items():
        start = time.perf_counter()
        results[name] = section(root, s)
        seconds[name] = round(time.perf_counter() - start, 1)
        if log is not None:
            log(f"{name}: {seconds[name]} s")
    results["section_seconds"] = seconds
    return results

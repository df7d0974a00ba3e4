"""Benchmark of memmesh.semantic: scoped search, embedding throughput, incremental updates.

    python benchmarks/bench_semantic.py [--quick] [--json FILE]

1. Search: top-10 within one user's scope (and unscoped) over N memories (100k; 10k with
   --quick) through ``SemanticIndex`` (replica reads included) against a plain numpy flat
   scan of the same vectors in the same run (matrix-vector product, mask, argpartition).
   Vectors are fixed random unit vectors (384-d, like all-MiniLM-L6-v2): search cost does
   not depend on where vectors came from. With similarity-only weights the two must
   return the same ids (checked); the default weights (recency, confidence, trust) are
   timed too. Target: index <= 2x the flat scan.
2. Embedding throughput: ``SentenceTransformerEmbedder.embed`` against raw
   ``SentenceTransformer.encode`` on the same batch (same model object, batch size).
   Target: >= 0.9x.
3. Incremental update: cost per changed memory of ``SemanticIndex.refresh()`` after
   local adds and updates (vectors from the table embedder: index overhead only; and
   with the real model), and the rebuild of a restarted index from the embedding cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# One BLAS thread for numpy (index and baseline alike): on a small shared machine a
# multi-threaded matrix-vector product stalls whenever another process holds a core,
# which makes timings swing tenfold. Override by setting the variable yourself.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from memmesh.semantic import ScoreWeights, SemanticIndex
from memmesh.storage import Replica

DIM = 384
USERS = 100
K = 10


class TableEmbedder:
    """Texts ``m<i>`` map to row ``i`` of a fixed random unit matrix; others are hashed."""

    name = "bench-table-384"

    def __init__(self, rows: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        table = rng.standard_normal((rows, DIM), dtype=np.float32)
        self.table = table / np.linalg.norm(table, axis=1, keepdims=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.table[int(text.split()[0][1:]) % len(self.table)]
        return out


def timed(fns: Sequence[Callable[[], Any]], repeat: int) -> tuple[list[float], list[Any]]:
    """Best wall seconds of each function over ``repeat`` interleaved rounds (the minimum
    is the figure least disturbed by a noisy shared machine), and their results."""
    best = [float("inf")] * len(fns)
    results: list[Any] = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best, results


def flat_scan(matrix: np.ndarray, users: np.ndarray, user: int | None, query: np.ndarray
              ) -> np.ndarray:
    """The baseline: score every row, mask out-of-scope rows, exact top-k."""
    scores = matrix @ query
    if user is not None:
        scores[users != user] = -np.inf
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top], kind="stable")]


def bench_search(n: int, queries: int, workdir: Path) -> dict[str, Any]:
    embedder = TableEmbedder(n + 10_000)
    user_of = np.arange(n) % USERS
    with Replica.open(workdir / "search", durable=False, map_size=1 << 30) as replica:
        start = time.perf_counter()
        for lo in range(0, n, 5_000):
            with replica.batch():
                for i in range(lo, min(n, lo + 5_000)):
                    replica.add(f"m{i} memory text", user_id=f"u{user_of[i]}", actor="agent")
        load_s = time.perf_counter() - start
        exact = SemanticIndex(replica, embedder, weights=ScoreWeights(
            recency=0.0, confidence=0.0, trust=0.0))
        start = time.perf_counter()
        exact.refresh()
        build_s = time.perf_counter() - start
        ranked = SemanticIndex(replica, embedder)
        ranked.refresh()
        matrix = embedder.table[:n].copy()
        rng = np.random.default_rng(1)
        qs = rng.standard_normal((queries, DIM)).astype(np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        result: dict[str, Any] = {"memories": n, "users": USERS, "queries": queries,
                                  "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"],
                                  "load_s": round(load_s, 2), "index_build_s": round(build_s, 2)}
        mismatches = 0
        for label, scoped in (("scoped", True), ("unscoped", False)):
            t_index, t_ranked, t_flat = [], [], []
            for j, q in enumerate(qs):
                user = j % USERS if scoped else None
                filters = {"user_id": f"u{user}"} if scoped else {}
                (ti, tr, tf), (hits, _, top) = timed([
                    lambda q=q, f=filters: exact.search_vector(q, K, **f),
                    lambda q=q, f=filters: ranked.search_vector(q, K, **f),
                    lambda q=q, u=user: flat_scan(matrix, user_of, u, q),
                ], 5)
                t_index.append(ti)
                t_ranked.append(tr)
                t_flat.append(tf)
                got = [int(h.version.text.split()[0][1:]) for h in hits]
                mismatches += got != top.tolist()
            med = {name: statistics.median(ts) * 1e3 for name, ts in
                   (("index", t_index), ("index_ranked", t_ranked), ("flat", t_flat))}
            result[label] = {
                "index_ms": round(med["index"], 3),
                "index_default_weights_ms": round(med["index_ranked"], 3),
                "flat_scan_ms": round(med["flat"], 3),
                "ratio_index_vs_flat": round(med["index"] / med["flat"], 3),
                "ratio_default_weights_vs_flat": round(med["index_ranked"] / med["flat"], 3),
            }
        result["exact_mismatches"] = mismatches
        return result


def bench_embedding(texts: int, repeat: int) -> dict[str, Any]:
    from memmesh.semantic import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(batch_size=64)
    subjects = ["The user", "Alice", "Bob's team", "The planner agent", "Carol"]
    facts = ["prefers tea over coffee in the morning", "deploys the backend every Friday",
             "is allergic to peanuts and shellfish", "uses PostgreSQL 15 in production",
             "wants summaries as bullet points", "is planning a trip to Kyoto in April"]
    batch = [f"{subjects[i % 5]} {facts[i % 6]} (note {i})." for i in range(texts)]
    embedder.embed(batch[:8])  # warm-up
    calls = {"ours": lambda: embedder.embed(batch),
             "raw": lambda: embedder.model.encode(batch, batch_size=64)}
    best = {"ours": float("inf"), "raw": float("inf")}
    for round_ in range(repeat):  # ABBA order, best of each: machine noise hits both alike
        for name in (("ours", "raw") if round_ % 2 == 0 else ("raw", "ours")):
            start = time.perf_counter()
            calls[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    ours, raw = [best["ours"]], [best["raw"]]
    ours_tps, raw_tps = texts / min(ours), texts / min(raw)
    return {"texts": texts, "batch_size": 64, "device": embedder.device,
            "embedder_texts_per_s": round(ours_tps, 1), "raw_encode_texts_per_s": round(raw_tps, 1),
            "ratio": round(ours_tps / raw_tps, 3)}


def bench_incremental(n: int, changes: int, model_changes: int, workdir: Path
                      ) -> dict[str, Any]:
    embedder = TableEmbedder(n + changes + 10)
    with Replica.open(workdir / "incr", durable=False, map_size=1 << 30) as replica:
        ids = []
        with replica.batch():
            for i in range(n):
                ids.append(replica.add(f"m{i} base", user_id=f"u{i % USERS}"))
        index = SemanticIndex(replica, embedder)
        index.refresh()
        with replica.batch():
            for i in range(changes // 2):
                replica.add(f"m{n + i} new", user_id=f"u{i % USERS}")
            for i in range(changes - changes // 2):
                replica.update(ids[i], f"m{n + changes // 2 + i} revised")
        start = time.perf_counter()
        changed = index.refresh()
        incr_s = time.perf_counter() - start
        start = time.perf_counter()
        restarted = SemanticIndex(replica, embedder)
        restarted.refresh()
        rebuild_s = time.perf_counter() - start
        result: dict[str, Any] = {
            "memories": n, "changed": changed,
            "refresh_us_per_changed_memory": round(incr_s / max(changed, 1) * 1e6, 1),
            "restart_rebuild_s": round(rebuild_s, 3),
            "restart_rebuild_us_per_memory": round(rebuild_s / n * 1e6, 1),
            "restart_model_calls": restarted.embedder.embedded,
        }
    if model_changes:
        from memmesh.semantic import SentenceTransformerEmbedder

        model = SentenceTransformerEmbedder()
        with Replica.open(workdir / "incr-model", durable=False) as replica:
            index = SemanticIndex(replica, model)
            index.refresh()
            with replica.batch():
                for i in range(model_changes):
                    replica.add(f"Fact number {i}: the build {i} passed on runner {i % 7}.",
                                user_id="u1")
            start = time.perf_counter()
            index.refresh()
            seconds = time.perf_counter() - start
        result["with_model_ms_per_new_memory"] = round(seconds / model_changes * 1e3, 2)
    return result


def run(quick: bool = False) -> dict[str, Any]:
    """Run every benchmark; ``quick`` shrinks them to a smoke test of a few seconds."""
    with tempfile.TemporaryDirectory(prefix="memmesh-bench-") as tmp:
        work = Path(tmp)
        return {
            "quick": quick,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "search": bench_search(10_000 if quick else 100_000, 20 if quick else 50, work),
            "embedding": bench_embedding(64 if quick else 256, 4 if quick else 6),
            "incremental": bench_incremental(5_000 if quick else 100_000,
                                             200 if quick else 2_000,
                                             16 if quick else 128, work),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    search, emb = results["search"], results["embedding"]
    ok = (search["exact_mismatches"] == 0 and search["scoped"]["ratio_index_vs_flat"] <= 2.0
          and emb["ratio"] >= 0.9)
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


"""The cost of encryption at rest: add, get and search on an encrypted replica against a
plaintext one, measured in the same run on the same machine and printed as ratios.

    python -m memmesh.benchmarks.bench_at_rest [--quick] [--json FILE]

Each side: ``n`` durable adds (one fsync'd transaction each: the encrypted side also
writes and fsyncs its key slot), ``n`` gets of random ids, and semantic searches over the
``n`` memories with a deterministic hash embedder (the index reads every record once,
then ranks in memory), plus a ``list`` of the whole scope (every state row opened).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

KEY = bytes(range(32))


def _per_op(fn: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / count


def bench_side(root: Path, key: bytes | None, n: int, searches: int) -> dict[str, float]:
    """Seconds per operation on one replica (``key``: encrypted, None: plaintext)."""
    texts = [f"memory {i}: the agent noted fact number {i} about project {i % 17}"
             for i in range(n)]
    with Replica.open(root, at_rest_key=key) as r:
        ids: list[str] = []
        add = _per_op(lambda: ids.extend(r.add(t, user_id="alice", metadata={"i": i})
                                         for i, t in enumerate(texts)), n)
        rng = random.Random(7)
        picks = [rng.choice(ids) for _ in range(n)]
        get = _per_op(lambda: [r.get(m) for m in picks], n)
        listed = _per_op(lambda: r.list(user_id="alice"), 1)
        index = SemanticIndex(r, HashingEmbedder())
        build = _per_op(index.refresh, 1)
        queries = [f"fact number {rng.randrange(n)} project" for _ in range(searches)]
        search = _per_op(lambda: [index.search(q, k=5, user_id="alice") for q in queries],
                         searches)
    return {"add_s": add, "get_s": get, "list_s": listed, "index_build_s": build,
            "search_s": search}


def run(n: int = 2_000, searches: int = 200, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        plain = bench_side(Path(tmp) / "plain", None, n, searches)
        sealed = bench_side(Path(tmp) / "sealed", KEY, n, searches)
    ratios = {name: sealed[name] / plain[name] for name in plain}
    return {"n": n, "searches": searches, "plaintext": plain, "encrypted": sealed,
            "ratio": ratios}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="200 memories, 20 searches")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = p.parse_args(argv)
    result = run(200, 20) if args.quick else run()
    print(f"{result['n']} memories, {result['searches']} searches; encrypted / plaintext:")
    for name, ratio in result["ratio"].items():
        plain, sealed = result["plaintext"][name], result["encrypted"][name]
        print(f"  {name[:-2]:<12} {plain * 1e6:10.1f} us -> {sealed * 1e6:10.1f} us"
              f"   x{ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

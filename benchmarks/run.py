"""``memmesh bench``: the head-to-head report, every figure a ratio against a baseline
measured in the same run on the same machine.

    memmesh bench [--quick] [--json FILE] [--out DIR]
    python -m memmesh.benchmarks.run [--quick] [--json FILE] [--out DIR]

Baselines: raw py-lmdb (one put per durable transaction, many puts in one, gets, cursor
scans), raw msgpack, Yjs (pycrdt) holding the same records, a numpy flat scan, exact
search (for the approximate index's latency and recall), raw
``SentenceTransformer.encode``; bounds for what has no peer (the epidemic spread bound).
Writes ``DIR/report.md`` (the table, also printed), ``DIR/report.json`` (the rows:
``name, value, unit, baseline, ratio, target, met``), ``DIR/raw.json`` (every measured
figure) and the plots ``DIR/sync_bytes_vs_k.png`` and ``DIR/search_latency_vs_n.png``.
``--quick`` runs the same code on sizes that finish well under a minute (for CI); the
full run takes about fifteen minutes on two cores, most of it searching 1M memories
and building the approximate index over 200k.
"""

from __future__ import annotations

import os

# One BLAS thread for numpy, set before numpy loads: search and its flat-scan baseline
# alike (a multi-threaded matvec swings tenfold on a shared 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memmesh.benchmarks.sizes import FULL, QUICK, Sizes


def configure(p: argparse.ArgumentParser) -> None:
    """Add ``bench``'s options to ``p``."""
    p.add_argument("--quick", action="store_true",
                   help="small sizes, same code paths: well under a minute (CI)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write the rows (JSON list) to FILE")
    p.add_argument("--out", type=Path, default=Path("bench-out"), metavar="DIR",
                   help="directory for report.md, report.json, raw.json and the plots "
                        "(default: bench-out)")
    p.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                   help="scratch directory for the replicas (default: the system temp dir)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on an ``argparse`` sub-parsers object; returns the parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="head-to-head benchmark report (table, JSON, plots)",
        description=__doc__.split("\n\n")[0] if __doc__ else None)
    configure(p)
    p.set_defaults(func=run)
    return p


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_sizes(sizes: Sizes, out: Path, json_file: Path | None = None,
              tmp: Path | None = None) -> list[dict[str, Any]]:
    """Measure with ``sizes``, write the report files under ``out``; the JSON rows."""
    from memmesh.benchmarks.measure import measure
    from memmesh.benchmarks.plots import write_plots
    from memmesh.benchmarks.report import build_rows
    from memmesh.benchmarks.rows import markdown, write_json

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _log(f"{sizes.mode} run, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="memmesh-bench-", dir=tmp) as scratch:
        results = measure(sizes, Path(scratch), _log)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    (out / "raw.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = build_rows(results)
    table = markdown(rows)
    (out / "report.md").write_text(table)
    write_json(rows, out / "report.json")
    if json_file is not None:
        write_json(rows, json_file)
    write_plots(results, out)
    print(table)
    missed = [r.name for r in rows if r.met is False]
    _log(f"done in {results['wall_s']} s; wrote {out}; "
         + (f"{len(missed)} target(s) missed" if missed else "every target met"))
    return [r.as_json() for r in rows]


def run(args: argparse.Namespace) -> int:
    """``memmesh bench`` on parsed arguments; 0 when it ran (missed targets included)."""
    run_sizes(QUICK if args.quick else FULL, args.out, args.json, args.tmp)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memmesh bench", description=__doc__.split("\n\n")[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""Signed writes against unsigned ones, measured in one run (issue 16, deliverable 2).

    .venv/bin/python -m memmesh.benchmarks.bench_signed [--quick] [--json FILE]

Figures, each a ratio of signed to unsigned in the same run (interleaved, medians):

1. ``sync_apply`` of a 20k-memory change set into an empty replica: a signed source
   into a replica that checks every proof (``TrustStore``) against an unsigned source
   into an unchecking one (target >= 0.5);
2. the same onto a replica already holding every key (each dot held with its proof is
   not checked again);
3. ``add`` latency, durable single adds and adds in one ``replica.batch()`` (one
   signature per 64 leaves).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from memmesh.storage import Replica
from memmesh.trust import Authority, Grant, MemberIdentity, TrustStore

from .bench_storage import _median, build_source, rate, text_for

_NOW = int(time.time() * 1000)


def _identity(authority: Authority, replica_id: str) -> MemberIdentity:
    return authority.issue(replica_id, read=(Grant.parse("all"),), write=(Grant.parse("all"),),
                           actors=None, expires_ms=_NOW + 86_400_000 * 365, now_ms=_NOW)


def _apply(root: Path, payload: bytes, n: int, trust: TrustStore | None,
           ) -> tuple[float, float, float]:
    """Seconds of one ``sync_apply`` of ``payload`` into an empty replica, CPU seconds,
    and seconds of applying it again onto the filled one."""
    with Replica.open(root, durable=False, trust=trust) as dst:
        t, c = time.perf_counter(), time.process_time()
        result = dst.sync_apply(payload)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        assert result.applied == n and not result.refused, result.refused[:3]
        t = time.perf_counter()
        dst.sync_apply(payload)
        return wall, cpu, time.perf_counter() - t


def bench_sync(root: Path, n: int, rounds: int = 3) -> dict[str, float]:
    authority = Authority.create("bench")
    signed, _ = build_source(root / "src-signed", n, identity=_identity(authority, "src"))
    plain, _ = build_source(root / "src-plain", n)
    with Replica.open(root / "empty", durable=False) as empty:
        summary = empty.sync_summary()
    payloads = {"signed": signed.sync_changes(summary), "plain": plain.sync_changes(summary)}
    signed.close()
    plain.close()
    runs: dict[str, list[tuple[float, float, float]]] = {"signed": [], "plain": []}
    for i in range(rounds):
        for kind in ("plain", "signed"):
            trust = TrustStore(authority.public) if kind == "signed" else None
            runs[kind].append(_apply(root / f"dst-{kind}-{i}", payloads[kind], n, trust))
    med = {kind: [_median([r[j] for r in rs]) for j in range(3)] for kind, rs in runs.items()}
    return {"memories": n,
            "unsigned_apply_per_s": rate(n, med["plain"][0]),
            "signed_apply_per_s": rate(n, med["signed"][0]),
            "ratio": med["plain"][0] / med["signed"][0],
            "cpu_ratio": med["plain"][1] / med["signed"][1],
            "unsigned_onto_equal_per_s": rate(n, med["plain"][2]),
            "signed_onto_equal_per_s": rate(n, med["signed"][2]),
            "onto_equal_ratio": med["plain"][2] / med["signed"][2],
            "unsigned_payload_bytes": len(payloads["plain"]),
            "signed_payload_bytes": len(payloads["signed"])}


def _adds(path: Path, n: int, identity: MemberIdentity | None, *, batch: bool) -> float:
    with Replica.open(path, identity=identity) as replica:
        t = time.perf_counter()
        with replica.batch() if batch else contextlib.nullcontext():
            for i in range(n):
                replica.add(text_for(i), user_id=f"u{i % 997}", actor="agent")
        return (time.perf_counter() - t) / n


def bench_adds(root: Path, n: int, *, batch: bool, rounds: int = 3) -> dict[str, float]:
    authority = Authority.create("bench")
    identity = _identity(authority, "writer")
    plain, signed = [], []
    for i in range(rounds):
        plain.append(_adds(root / f"add-plain-{batch}-{i}", n, None, batch=batch))
        signed.append(_adds(root / f"add-signed-{batch}-{i}", n, identity, batch=batch))
    p, s = _median(plain), _median(signed)
    return {"adds": n, "unsigned_us_per_add": p * 1e6, "signed_us_per_add": s * 1e6,
            "latency_ratio": s / p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memmesh-bench-signed-"))
    figures: dict[str, Any] = {"mode": "quick" if args.quick else "full"}
    try:
        figures["sync_apply"] = bench_sync(root, 5000 if args.quick else 20_000)
        figures["durable_add"] = bench_adds(root, 50 if args.quick else 200, batch=False)
        figures["batched_add"] = bench_adds(root, 2000 if args.quick else 10_000, batch=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Gossip benchmark: propagation latency, convergence, wire and summary overhead.

    .venv/bin/python benchmarks/bench_gossip.py [--quick] [--json FILE]

Figures (targets from issue 4):

1. time for a priority write to reach all of 10 node processes on loopback, p50/p99
   (target p99 <= 100 ms).  The benchmark process writes into node 0's LMDB replica (a
   write by another process on the same path: node 0 notices it through the change
   journal and pushes it) and polls the other nine replicas until all hold it;
2. time for 5 node processes to converge after 10k writes spread over them (2k each,
   written while the nodes run);
3. bytes on the wire (protocol frames, TLS record overhead excluded) per memory synced
   between two nodes, against the raw payload (the memory's text) and against the
   storage layer's own ``sync_changes`` bytes for the same memories (so the protocol's
   share of the overhead shows apart from the key-state format's);
4. ``sync_summary`` bytes per origin (target <= 24).

Every node is a real process (``python -m memmesh.gossip.serve``) with TLS 1.3 links
(fresh cluster key), static seeds in a full mesh, mDNS off.  ``--quick`` shrinks every
count so the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from memmesh.gossip import Node, new_cluster_key
from memmesh.storage import Replica

TEXTS = ("prefers dark mode in every editor", "is allergic to peanuts and shellfish",
         "works on the billing service rewrite", "wants weekly summaries on Fridays",
         "asked to avoid meetings before ten", "uses Python 3.11 and trio for services")


class Proc:
    def __init__(self, path: Path, key_hex: str, seeds: list[tuple[str, int]]) -> None:
        cmd = [sys.executable, "-m", "memmesh.gossip.serve", str(path), "--no-mdns",
               "--key-hex", key_hex, "--interval", "1.0"]
        for host, port in seeds:
            cmd += ["--seed", f"{host}:{port}"]
        self.log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log)
        self.path = path
        line = b""
        end = time.monotonic() + 60
        assert self.proc.stdout is not None
        while not line.endswith(b"\n"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"node failed to start, see {self.log.name}")
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line += os.read(self.proc.stdout.fileno(), 1)
        _, port_text, self.replica_id = line.decode().split()
        self.port = int(port_text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def start_mesh(root: Path, n: int, key_hex: str) -> list[Proc]:
    procs: list[Proc] = []
    for i in range(n):
        seeds = [("127.0.0.1", p.port) for p in procs]
        procs.append(Proc(root / f"node{i}", key_hex, seeds))
    return procs


def wait(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.01)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bench_propagation(root: Path, n: int, samples: int) -> dict[str, Any]:
    key_hex = new_cluster_key().hex()
    procs = start_mesh(root, n, key_hex)
    reps = [Replica.open(p.path) for p in procs]
    try:
        # warm-up: every node linked and synced once
        reps[0].add("warm-up")
        wait(lambda: len({r.state_digest() for r in reps}) == 1, 120, "warm-up convergence")
        lat: list[float] = []
        rng = random.Random(4)
        for i in range(samples):
            time.sleep(rng.uniform(0.02, 0.08))
            t0 = time.perf_counter()
            mid = reps[0].add(f"priority note {i}: {rng.choice(TEXTS)}", priority=True)
            pending = set(range(1, n))
            while pending:
                pending = {j for j in pending if reps[j].get(mid) is None}
                if pending:
                    time.sleep(0.0005)
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError("a priority write never arrived")
            lat.append((time.perf_counter() - t0) * 1000)
        return {"processes": n, "samples": samples, "p50_ms": round(pct(lat, 0.5), 1),
                "p99_ms": round(pct(lat, 0.99), 1), "max_ms": round(max(lat), 1),
                "mean_ms": round(statistics.mean(lat), 1)}
    finally:
        for r in reps:
            r.close()
        for p in procs:
            p.stop()


def bench_convergence(root: Path, n: int, writes: int) -> dict[str, Any]:
    key_hex = new_cluster_key().hex()
    procs = start_mesh(root, n, key_hex)
    reps = [Replica.open(p.path, durable=False) for p in procs]
    try:
        reps[0].add("warm-up")
        wait(lambda: len({r.state_digest() for r in reps}) == 1, 120, "warm-up convergence")
        rng = random.Random(5)
        t0 = time.perf_counter()
        per = writes // n
        for i, r in enumerate(reps):
            with r.batch():
                for j in range(per):
                    r.add(f"{rng.choice(TEXTS)} (node {i}, #{j})", app_id="bench",
                          user_id=f"u{j % 50}")
            r.flush()
        t_written = time.perf_counter()
        wait(lambda: len({r.state_digest() for r in reps}) == 1, 600, "convergence")
        t_done = time.perf_counter()
        return {"processes": n, "writes": per * n, "write_s": round(t_written - t0, 2),
                "converge_after_last_write_s": round(t_done - t_written, 2),
                "total_s": round(t_done - t0, 2)}
    finally:
        for r in reps:
            r.close()
        for p in procs:
            p.stop()


async def _wire(root: Path, memories: int) -> dict[str, Any]:
    key = new_cluster_key()
    rng = random.Random(6)
    with Replica.open(root / "wa", durable=False) as ra, \
            Replica.open(root / "wb", durable=False) as rb:
        payload = 0
        with ra.batch():
            for i in range(memories):
                text = f"{rng.choice(TEXTS)} (memory {i})"
                payload += len(text.encode())
                ra.add(text, app_id="bench", user_id=f"u{i % 50}", agent_id="agent-7")
        async with Node(ra, cluster_key=key, mdns=False, remember_peers=False) as a, \
                Node(rb, cluster_key=key, mdns=False, remember_peers=False,
                     seeds=[("127.0.0.1", a.port)]) as b:
            with trio.fail_after(300):
                while ra.state_digest() != rb.state_digest():
                    await trio.sleep(0.01)
            st_a, st_b = a.status(), b.status()
        wire = st_a.bytes_out + st_b.bytes_out
        changes = ra.sync_changes(rb.sync_summary(), max_bytes=None)
        with Replica.open(root / "wc", durable=False) as empty:
            state_bytes = len(ra.sync_changes(empty.sync_summary(), max_bytes=None))
        return {"memories": memories, "wire_bytes": wire,
                "wire_bytes_per_memory": round(wire / memories, 1),
                "raw_text_bytes_per_memory": round(payload / memories, 1),
                "wire_over_raw": round(wire / payload, 2),
                "storage_changes_bytes_per_memory": round(state_bytes / memories, 1),
                "protocol_overhead": round(wire / state_bytes, 3),
                "empty_changes_bytes_after_sync": len(changes)}


def bench_summary(root: Path, origins: int) -> dict[str, Any]:
    with Replica.open(root / "collector", durable=False) as sink:
        empty = len(sink.sync_summary())
        for i in range(origins):
            with Replica.open(root / f"origin{i}", durable=False) as src:
                src.add(f"note from origin {i}")
                sink.sync_apply(src.sync_changes(sink.sync_summary()))
        full = len(sink.sync_summary())
        rid_len = len(sink.replica_id)
    return {"origins": origins, "summary_bytes_empty": empty, "summary_bytes": full,
            "bytes_per_origin": round((full - empty) / origins, 1),
            "replica_id_chars": rid_len}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        results: dict[str, Any] = {"quick": q}
        (root / "p").mkdir()
        (root / "c").mkdir()
        results["propagation"] = bench_propagation(root / "p", 10, 30 if q else 200)
        print("priority write to all of 10 processes:", results["propagation"], flush=True)
        results["convergence"] = bench_convergence(root / "c", 5, 1000 if q else 10_000)
        print("convergence of 5 processes:", results["convergence"], flush=True)
        results["wire"] = trio.run(_wire, root, 500 if q else 5000)
        print("wire bytes per memory:", results["wire"], flush=True)
        results["summary"] = bench_summary(root, 20 if q else 100)
        print("summary bytes per origin:", results["summary"], flush=True)
    p99 = results["propagation"]["p99_ms"]
    per_origin = results["summary"]["bytes_per_origin"]
    print(f"\ntargets: p99 {p99} ms (<= 100: {'met' if p99 <= 100 else 'MISSED'}), "
          f"summary {per_origin} B/origin (<= 24: {'met' if per_origin <= 24 else 'MISSED'})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

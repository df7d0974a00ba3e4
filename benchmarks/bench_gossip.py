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
4. ``sync_summary`` bytes per origin (target <= 24);
5. a join under attack (issue 11, case 10; target <= 2x): a node holding data is
   attacked by ``100`` key-holding links that each send their HELLO and then all but
   one byte of a 4 MiB frame, and by ``1,000`` connections that never finish the TLS
   handshake; then a fresh node joins and syncs.  The time from its start to holding
   the victim's state is compared with the same join unloaded, measured in the same
   run, and the victim's resident memory (now and peak) is reported.  The attack runs
   in its own process, is opened once before the join and held open (dropped
   connections are not re-opened); the joiner runs in this process, the victim in its
   own.

Every node is a real process (``python -m memmesh.integrations.node``) with TLS 1.3 links
(fresh cluster key), static seeds in a full mesh, mDNS off.  ``--quick`` shrinks every
count so the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from memmesh.gossip import ClusterCredentials, Node, cluster_fingerprint, new_cluster_key
from memmesh.gossip.protocol import encode_frame
from memmesh.gossip.protocol.messages import PROTOCOL_VERSION, Hello, encode_message
from memmesh.storage import Replica

TEXTS = ("prefers dark mode in every editor", "is allergic to peanuts and shellfish",
         "works on the billing service rewrite", "wants weekly summaries on Fridays",
         "asked to avoid meetings before ten", "uses Python 3.11 and trio for services")


class Proc:
    def __init__(self, path: Path, key_hex: str, seeds: list[tuple[str, int]]) -> None:
        cmd = [sys.executable, "-m", "memmesh.integrations.node", "--data", str(path),
               "--no-mdns", "--interval", "1.0"]
        for host, port in seeds:
            cmd += ["--seed", f"{host}:{port}"]
        self.log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115
        env = {**os.environ, "MEMMESH_CLUSTER_KEY": key_hex}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.path = path
        line = b""
        end = time.monotonic() + 60
        assert self.proc.stdout is not None
        poller = select.poll()  # not select(): the attack benchmark holds > 1,024 fds
        poller.register(self.proc.stdout, select.POLLIN)
        while not line.endswith(b"\n"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"node failed to start, see {self.log.name}")
            if poller.poll(200):
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


def _rss_kb(pid: int) -> dict[str, int]:
    """Resident memory of process ``pid`` now (VmRSS) and at its peak (VmHWM), in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def _join(path: Path, key: bytes, port: int, digest: str) -> float:
    """Seconds from a fresh node starting (in this process) to it holding ``digest``."""
    with Replica.open(path, durable=False) as mine:
        t0 = time.perf_counter()
        async with Node(mine, cluster_key=key, mdns=False, remember_peers=False,
                        seeds=[("127.0.0.1", port)]):
            with trio.fail_after(300):
                while mine.state_digest() != digest:
                    await trio.sleep(0.005)
            return time.perf_counter() - t0


async def _attack(port: int, key: bytes, links: int, silent: int) -> dict[str, int]:
    """Case 10: ``links`` key holders each send a HELLO and all but one byte of a 4 MiB
    frame, then ``silent`` connections never start TLS; all held open until stdin
    closes.  Prints ``READY`` once everything was sent."""
    opened = {"hoarding": 0, "silent": 0}
    streams: list[trio.abc.Stream] = []
    fp = cluster_fingerprint(key)
    frame = 4 * 1024 * 1024
    chunk = b"\x00" * 65536

    async def hoard(i: int) -> None:
        rid = f"mallory-{i:03d}"
        ctx = ClusterCredentials.create(key, rid).client_context()
        try:
            tls = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx,
                                 server_hostname="memmesh")
            streams.append(tls)
            hello = Hello(PROTOCOL_VERSION, fp, rid, 0, 8, frame, int(time.time() * 1000))
            await tls.send_all(encode_frame(encode_message(hello), cap=frame))
            opened["hoarding"] += 1
            await tls.send_all(struct.pack(">I", frame))
            for _ in range(frame // len(chunk) - 1):
                await tls.send_all(chunk)
            await tls.send_all(chunk[:-1])  # all but the last byte
        except (trio.BrokenResourceError, OSError):
            pass  # dropped by the victim: its defence

    async with trio.open_nursery() as nursery:
        for start in range(0, links, 32):  # through the victim's handshake gate
            async with trio.open_nursery() as batch:
                for i in range(start, min(links, start + 32)):
                    batch.start_soon(hoard, i)
                await trio.sleep(0.5)
                batch.cancel_scope.deadline = trio.current_time() + 30
        for _ in range(silent):  # TCP only: the TLS handshake never starts
            streams.append(await trio.open_tcp_stream("127.0.0.1", port))
            opened["silent"] += 1
        print("READY", json.dumps(opened), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the benchmark closes it
        nursery.cancel_scope.cancel()
    for stream in streams:
        await trio.aclose_forcefully(stream)
    return opened


def _attack_main() -> None:
    """``python -m memmesh.benchmarks.bench_gossip --attack PORT KEYHEX LINKS SILENT``."""
    port, key_hex, links, silent = sys.argv[2:6]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    trio.run(_attack, int(port), bytes.fromhex(key_hex), int(links), int(silent))


def bench_attack_join(root: Path, memories: int, links: int = 100,
                      silent: int = 1000) -> dict[str, Any]:
    key = new_cluster_key()
    rng = random.Random(7)
    with Replica.open(root / "victim", durable=False) as rv:
        with rv.batch():
            for i in range(memories):
                rv.add(f"{rng.choice(TEXTS)} (memory {i})", app_id="bench", user_id=f"u{i % 50}")
        rv.flush()
        digest = rv.state_digest()
    victim = Proc(root / "victim", key.hex(), [])
    attacker = None
    try:
        unloaded = trio.run(_join, root / "joiner-unloaded", key, victim.port, digest)
        before = _rss_kb(victim.proc.pid)
        attacker = subprocess.Popen(
            [sys.executable, "-m", "memmesh.benchmarks.bench_gossip", "--attack",
             str(victim.port), key.hex(), str(links), str(silent)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert attacker.stdout is not None and attacker.stdin is not None
        ready = attacker.stdout.readline().split(maxsplit=1)
        if not ready or ready[0] != "READY":
            raise RuntimeError("the attacker did not get going")
        opened = json.loads(ready[1])
        attacked = trio.run(_join, root / "joiner-attacked", key, victim.port, digest)
        during = _rss_kb(victim.proc.pid)
        alive = victim.proc.poll() is None
    finally:
        if attacker is not None and attacker.stdin is not None:
            attacker.stdin.close()
            attacker.wait(60)
        victim.stop()
    return {"memories": memories, "attacker_links": links, "silent_connections": silent,
            "connections_opened": opened, "join_unloaded_s": round(unloaded, 3),
            "join_under_attack_s": round(attacked, 3),
            "ratio": round(attacked / unloaded, 2),
            "victim_rss_mb_before": round(before["VmRSS"] / 1024, 1),
            "victim_rss_mb_under_attack": round(during["VmRSS"] / 1024, 1),
            "victim_peak_rss_mb": round(during["VmHWM"] / 1024, 1), "victim_alive": alive}


def main() -> int:
    if sys.argv[1:2] == ["--attack"]:
        _attack_main()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--only", choices=("attack",), default=None,
                    help="run only the attack-join figure")
    args = ap.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        results: dict[str, Any] = {"quick": q}
        (root / "a").mkdir()
        results["attack"] = bench_attack_join(root / "a", 500 if q else 5000)
        print("join under attack:", results["attack"], flush=True)
        if args.only == "attack":
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
            return 0
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
    ratio = results["attack"]["ratio"]
    print(f"\ntargets: p99 {p99} ms (<= 100: {'met' if p99 <= 100 else 'MISSED'}), "
          f"summary {per_origin} B/origin (<= 24: {'met' if per_origin <= 24 else 'MISSED'}), "
          f"join under attack {ratio}x (<= 2: {'met' if ratio <= 2 else 'MISSED'})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

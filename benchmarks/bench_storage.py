"""Storage benchmark: memmesh's LMDB replica against raw py-lmdb, measured in one run.

    .venv/bin/python benchmarks/bench_storage.py [--quick] [--json FILE] [--dir DIR]

Figures (targets from issue 3):

1. durable ``add`` rate / raw py-lmdb rate with one put per fsynced transaction (>= 0.8),
   and the bytes each writes per commit (the dirty pages its fsync flushes; Linux);
2. batched ``add`` rate (``with replica.batch()``) / raw puts in one transaction (>= 0.1);
3. ``sync_apply`` rate of a 20k-memory change set into an empty replica (>= 100k/s)
   and into a replica holding 20k other memories (>= 50k/s; issue 17);
4. bytes of ``sync_changes`` for 100 changed memories out of 20k / raw msgpack size of
   those memories' payload (each memory as a map of id, text, actor, app_id, user_id,
   metadata, confidence and wall-clock timestamp) (<= 1.2), measured twice: with the
   default ``history_limit=32`` (``sync``: each updated memory ships its replicated
   timeline, the superseded version's event included, so the ratio is above the
   target) and with ``history_limit=0`` (``sync_history_limit_0``: only the events of
   the standing versions travel, no past for ``history``/``as_of``);
5. peak RSS of a process holding 1M memories open and serving ``get``/``list``
   (<= 300 MB; full mode only).

The raw baselines use the same value sizes and the same disk as the replica.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import lmdb

from memmesh.crdt import packb, unpackb
from memmesh.crdt.keystate import DEFAULT_KEEP
from memmesh.storage import MemoryRecord, Replica

TOPICS = ("prefers dark mode in every editor", "is allergic to peanuts and shellfish",
          "works on the billing service rewrite", "wants weekly summaries on Fridays",
          "asked to avoid meetings before ten", "uses Python 3.11 and trio for services")


def text_for(i: int) -> str:
    return f"User {i % 997} {TOPICS[i % len(TOPICS)]}; noted during session {i}."


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def raw_env(path: Path, sync: bool) -> lmdb.Environment:
    return lmdb.open(str(path), map_size=1 << 30, sync=sync, metasync=sync)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _raw_puts(path: Path, n: int, *, per_txn: int) -> float:
    """Puts per second of raw py-lmdb, ``per_txn`` puts per fsynced transaction."""
    env = raw_env(path, True)
    value = packb({"text": text_for(1), "user_id": "u1", "actor": "agent"})
    t = time.perf_counter()
    for start in range(0, n, per_txn):
        with env.begin(write=True) as txn:
            for _ in range(min(per_txn, n - start)):
                txn.put(uuid.uuid4().hex.encode(), value)
    elapsed = time.perf_counter() - t
    env.close()
    return rate(n, elapsed)


def _ours_adds(path: Path, n: int, *, batch: bool) -> float:
    """``add`` calls per second of a durable replica, each committed alone or all in
    one ``replica.batch()``."""
    with Replica.open(path) as replica:
        t = time.perf_counter()
        with replica.batch() if batch else contextlib.nullcontext():
            for i in range(n):
                replica.add(text_for(i), user_id=f"u{i % 997}", actor="agent")
        return rate(n, time.perf_counter() - t)


def _alternate(root: Path, name: str, raw_fn: Any, ours_fn: Any, n: int,
               rounds: int = 3) -> tuple[float, float]:
    """Medians of interleaved runs, so a noisy disk or CPU hits both sides alike."""
    raws, ours = [], []
    for i in range(rounds):
        raws.append(raw_fn(root / f"raw-{name}-{i}", n))
        ours.append(ours_fn(root / f"rep-{name}-{i}", n))
    return _median(raws), _median(ours)


def _written() -> int | None:
    """Bytes this process has passed to write calls so far (``wchar`` of /proc/self/io;
    None where there is none): LMDB writes every dirty page of a commit, so the bytes
    per durable write count the pages each fsync must flush."""
    try:
        with open("/proc/self/io", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))
    except (OSError, StopIteration, ValueError):
        return None


def _bytes_per_write(fn: Any, path: Path, n: int) -> float | None:
    before = _written()
    fn(path, n)
    after = _written()
    return None if before is None or after is None else (after - before) / n


def bench_durable(root: Path, n: int) -> dict[str, float | None]:
    raw, ours = _alternate(root, "durable", lambda p, k: _raw_puts(p, k, per_txn=1),
                           lambda p, k: _ours_adds(p, k, batch=False), n)
    # what limits the ratio besides the Python of an add: the pages each commit flushes
    raw_bytes = _bytes_per_write(lambda p, k: _raw_puts(p, k, per_txn=1), root / "raw-io", n)
    ours_bytes = _bytes_per_write(lambda p, k: _ours_adds(p, k, batch=False), root / "rep-io", n)
    return {"raw_durable_puts_per_s": raw, "durable_adds_per_s": ours, "ratio": ours / raw,
            "raw_bytes_written_per_put": raw_bytes, "bytes_written_per_add": ours_bytes}


def bench_batched(root: Path, n: int) -> dict[str, float]:
    raw, ours = _alternate(root, "batch", lambda p, k: _raw_puts(p, k, per_txn=k),
                           lambda p, k: _ours_adds(p, k, batch=True), n)
    return {"raw_puts_one_txn_per_s": raw, "batched_adds_per_s": ours, "ratio": ours / raw}


def metadata_for(i: int) -> dict[str, Any]:
    """Metadata of memory ``i`` when a workload carries some (a source and a turn)."""
    return {"source": ("chat", "tool", "email")[i % 3], "turn": i % 50}


def build_source(path: Path, n: int, *, metadata: bool = False,
                 history_limit: int = DEFAULT_KEEP, **options: Any
                 ) -> tuple[Replica, list[str]]:
    """A write-behind replica holding ``n`` memories (``text_for``; 997 users; 8 actors;
    ``metadata_for`` too if ``metadata``) and their ids in creation order; ``options``
    go to ``Replica.open`` (e.g. an ``identity`` that signs them)."""
    replica = Replica.open(path, durable=False, history_limit=history_limit, **options)
    ids: list[str] = []
    chunk = 5000
    for start in range(0, n, chunk):
        with replica.batch():
            ids.extend(replica.add(text_for(i), user_id=f"u{i % 997}", app_id="bench",
                                   actor=f"agent-{i % 8}",
                                   metadata=metadata_for(i) if metadata else None)
                       for i in range(start, min(n, start + chunk)))
    return replica, ids


def raw_record(rec: MemoryRecord) -> dict[str, Any]:
    """A memory's payload as an application would ship it without any CRDT metadata:
    id, text, actor, app_id, user_id, metadata, confidence and wall-clock timestamp."""
    return {"id": rec.id, "text": rec.text, "actor": rec.actor, "app_id": rec.app_id,
            "user_id": rec.user_id, "metadata": dict(rec.metadata),
            "confidence": rec.confidence, "timestamp": rec.updated_at.wall_ms}


def bench_sync(root: Path, n: int, changed: int,
               history_limit: int = DEFAULT_KEEP) -> dict[str, float]:
    """Figures 3 and 4 for memories added with ``history_limit`` (the timeline's bound:
    the default keeps superseded events, which an updated memory then ships)."""
    root = root / f"sync-keep{history_limit}"
    root.mkdir()
    src, ids = build_source(root / "sync-src", n, history_limit=history_limit)
    payload = src.sync_changes(Replica.open(root / "sync-empty", durable=False).sync_summary())
    # three applies into fresh empty replicas, medians of wall and CPU time (the CPU
    # time of this process is less disturbed by other load on a shared machine)
    walls, cpus, replicas = [], [], []
    for i in range(3):
        replica = Replica.open(root / f"sync-dst{i}", durable=False)
        t, c = time.perf_counter(), time.process_time()
        result = replica.sync_apply(payload)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        assert result.applied == n and src.state_digest() == replica.state_digest()
        replicas.append(replica)
    dst, again = replicas[0], replicas[1]
    apply_s = _median(walls)
    t = time.perf_counter()
    again.sync_apply(payload)  # a second time: every key joins with an equal local state
    rejoin_s = time.perf_counter() - t
    # into a populated replica: one holding n other memories (issue 17: >= 50k/s)
    populated, _ = build_source(root / "sync-populated", n, history_limit=history_limit)
    t, c = time.perf_counter(), time.process_time()
    assert populated.sync_apply(payload).applied == n
    populated_s, populated_cpu = time.perf_counter() - t, time.process_time() - c
    populated.close()
    # 100 changed memories of n
    picked = ids[:: max(1, n // changed)][:changed]
    for i, mid in enumerate(picked):
        src.update(mid, text_for(n + i), actor="agent-x")
    delta = src.sync_changes(dst.sync_summary())
    shipped = len(unpackb(delta)["states"])
    raw_records = []
    for mid in picked:
        rec = src.get(mid)
        assert rec is not None
        raw_records.append(raw_record(rec))
    raw_bytes = len(packb(raw_records))
    dst.sync_apply(delta)
    assert src.state_digest() == dst.state_digest()
    for r in (src, *replicas):
        r.close()
    return {"memories": n, "history_limit": history_limit,
            "sync_apply_per_s": rate(n, apply_s),
            "sync_apply_s": apply_s, "sync_apply_cpu_per_s": rate(n, _median(cpus)),
            "sync_apply_onto_equal_per_s": rate(n, rejoin_s),
            "sync_apply_populated_per_s": rate(n, populated_s),
            "sync_apply_populated_cpu_per_s": rate(n, populated_cpu),
            "full_payload_bytes": len(payload), "changed": shipped,
            "changes_bytes": len(delta), "raw_msgpack_bytes": raw_bytes,
            "bytes_ratio": len(delta) / raw_bytes}


def bench_apply_floor(root: Path, n: int) -> dict[str, float]:
    """What ``sync_apply`` into an empty replica could cost at least in Python with this
    layout (issue 17's >= 100k/s is 10 us per memory): the CPU microseconds per memory of
    a stripped loop over the same payload that does only the unavoidable steps, each
    stage adding one (unpack; + validate and build the state, the codec's fast path;
    + the canonical check; + the state, three scope, origin and journal rows, the digest
    item and one putmulti per sub-database), and the last stage with only the state and
    journal rows (what fewer index rows per memory, a layout change, could give at most);
    next to the real ``sync_apply`` of the payload. A prototype: it skips the judging,
    the claims and every check of the real path."""
    import hashlib
    import zlib

    from memmesh.crdt import pack_canonical
    from memmesh.storage import _keycodec
    from memmesh.storage._gcpause import gc_paused
    from memmesh.storage.wire import parse_changes

    src, _ = build_source(root / "floor-src", n)
    payload = src.sync_changes(Replica.open(root / "floor-empty", durable=False).sync_summary())
    src.close()
    names = ("state", "scope", "origin", "journal")

    def stripped(stage: int, path: Path, indexes: bool = True) -> float:
        env = lmdb.open(str(path), map_size=1 << 30, max_dbs=8, sync=False, metasync=False)
        dbs = {name: env.open_db(name.encode()) for name in names}
        with gc_paused():  # as sync_apply
            cpu = _stripped_apply(stage, env, dbs, indexes)
        env.close()
        return cpu * 1e6 / n

    def _stripped_apply(stage: int, env: lmdb.Environment, dbs: dict[str, Any],
                        indexes: bool) -> float:
        c = time.process_time()
        decoded = []
        for raw in parse_changes(payload).states:
            plain = _keycodec._unpack(raw, check_keys=False)
            state = _keycodec._single_writer(plain) if stage >= 1 else None
            if stage >= 2 and pack_canonical(plain) != raw:
                raise AssertionError("not canonical")
            decoded.append((raw, state))
        if stage >= 3:
            rows: dict[str, list[tuple[bytes, bytes]]] = {name: [] for name in names}
            sums: dict[int, int] = {}
            for seq, (raw, state) in enumerate(decoded, 1):
                assert state is not None
                h = state.header
                kb = h.key.encode()
                skey = bytes((zlib.crc32(kb) & 0xFF,)) + kb
                rows["state"].append((skey, raw))
                if indexes:
                    for tag, value in ((b"a", h.app_id), (b"u", h.user_id)):
                        rows["scope"].append((tag + str(value).encode() + b"\x00" + kb, b""))
                    rows["scope"].append((b"S" + bytes(32) + kb, b""))
                    for origin, counter in state.ctx.items():
                        rows["origin"].append((b"\x00" + origin.encode() + b"\x00"
                                               + counter.to_bytes(8, "big") + kb, b""))
                rows["journal"].append((seq.to_bytes(8, "big"),
                                        pack_canonical((h.key, False, h.priority))))
                item = hashlib.sha256(len(skey).to_bytes(2, "big") + skey + raw).digest()
                sums[skey[0]] = sums.get(skey[0], 0) + int.from_bytes(item, "big")
            with env.begin(write=True) as txn:
                for name, db_rows in rows.items():
                    if db_rows:
                        txn.cursor(db=dbs[name]).putmulti(db_rows)
        return time.process_time() - c

    out: dict[str, float] = {}
    labels = ("unpack", "validate", "canonical", "rows")
    for i in range(3):  # best of three, each stage in turn
        for stage, label in enumerate(labels):
            us = stripped(stage, root / f"floor-{label}-{i}")
            out[f"{label}_cpu_us"] = min(out.get(f"{label}_cpu_us", us), us)
        us = stripped(3, root / f"floor-state-journal-{i}", indexes=False)
        out["rows_state_journal_only_cpu_us"] = min(
            out.get("rows_state_journal_only_cpu_us", us), us)
        with Replica.open(root / f"floor-real-{i}", durable=False) as replica:
            c = time.process_time()
            replica.sync_apply(payload)  # the real path, for comparison
            us = (time.process_time() - c) * 1e6 / n
        out["sync_apply_cpu_us"] = min(out.get("sync_apply_cpu_us", us), us)
    return out


RSS_CHILD = """
import sys, time
from memmesh.storage import MemoryRecord, Replica
r = Replica.open(sys.argv[1], durable=False)
ids = sys.argv[2].split(",")
t = time.perf_counter()
for _ in range(5):
    for mid in ids:
        assert r.get(mid) is not None
gets = 5 * len(ids) / (time.perf_counter() - t)
t = time.perf_counter()
listed = sum(len(r.list(user_id=f"u{u}")) for u in range(20))
lists = 20 / (time.perf_counter() - t)
# VmHWM (peak RSS of this process image; ru_maxrss would include the parent's peak,
# which Linux carries over fork and exec), split now into RssAnon (the process's own
# memory) and RssFile (LMDB pages mapped from the page cache: shared, clean, dropped
# by the kernel under pressure; fault-around maps up to 64 KiB per touched page)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
kb = lambda name: int(status[name].split()[0])
print(kb("VmHWM"), gets, lists, listed, kb("RssAnon"), kb("RssFile"))
"""


def bench_rss(root: Path, n: int) -> dict[str, float]:
    path = root / "rss"
    t = time.perf_counter()
    src, ids = build_source(path, n)
    build_s = time.perf_counter() - t
    src.flush()
    src.close()
    rng = random.Random(7)
    sample = ",".join(rng.sample(ids, min(1000, len(ids))))
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(path), sample], check=True,
                         capture_output=True, text=True).stdout.split()
    size = sum(f.stat().st_size for f in path.iterdir())
    return {"memories": n, "build_s": build_s, "peak_rss_mb": int(out[0]) / 1024,
            "rss_anon_mb": int(out[4]) / 1024, "rss_file_mb": int(out[5]) / 1024,
            "gets_per_s": float(out[1]), "lists_per_s": float(out[2]),
            "listed": int(out[3]), "env_file_mb": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no 1M RSS run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--rss-only", action="store_true", help="only the 1M-memory RSS run")
    parser.add_argument("--floor", action="store_true",
                        help="only the stripped sync_apply prototype (bench_apply_floor)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memmesh-bench-", dir=args.dir))
    figures: dict[str, Any] = {"mode": "quick" if args.quick else "full",
                               "python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        if args.floor:
            figures["apply_floor"] = bench_apply_floor(root, 5000 if args.quick else 20_000)
        elif not args.rss_only:
            figures["durable_add"] = bench_durable(root, 100 if args.quick else 300)
            figures["batched_add"] = bench_batched(root, 5000 if args.quick else 20_000)
            figures["sync"] = bench_sync(root, 5000 if args.quick else 20_000, 100)
            figures["sync_history_limit_0"] = bench_sync(
                root, 5000 if args.quick else 20_000, 100, history_limit=0)
        if not args.quick and not args.floor:
            figures["rss"] = bench_rss(root, 1_000_000)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["peak_rss_bench_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

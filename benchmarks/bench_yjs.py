"""memmesh delta sync against Yjs (pycrdt) on the same memory records, in one run.

    python -m memmesh.benchmarks.bench_yjs [-n N]

Both sides hold the same N memories (``bench_storage.build_source`` with metadata); the
Yjs side is one ``pycrdt.Map`` keyed by memory id whose values are the records as an
application would ship them (``bench_storage.raw_record``: id, text, actor, scope,
metadata, confidence, timestamp).  A second replica / document is brought up to date,
then for each K the source updates K memories not touched before (a new text: memmesh
``update``, Yjs a new value for the key) and we measure what each system ships to the
stale peer: memmesh ``sync_changes(peer.sync_summary())``, Yjs
``get_update(peer.get_state())`` (the state-vector diff, which also carries the whole
delete set).  The yardstick is the raw msgpack payload of the K changed records, and the
cost of shipping the full state instead (raw msgpack of all N records).

Also measured: Yjs local sets (in memory, one transaction) and the apply rate of a full
state into an empty replica / document (memmesh ``sync_apply`` vs ``Doc.apply_update``;
median of three fresh applies each).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from memmesh.benchmarks.bench_storage import build_source, raw_record, text_for
from memmesh.crdt import packb
from memmesh.storage import Replica


@dataclass
class SyncPoint:
    """Bytes shipped to a stale peer after ``k`` memories changed."""

    k: int
    memmesh_bytes: int
    yjs_bytes: int
    raw_bytes: int
    full_state_raw_bytes: int


@dataclass
class SyncFigures:
    memories: int
    curve: list[SyncPoint]
    memmesh_full_state_bytes: int
    yjs_full_state_bytes: int
    memmesh_apply_per_s: float
    yjs_apply_per_s: float
    yjs_local_sets_per_s: float


def _records(replica: Replica, ids: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for mid in ids:
        rec = replica.get(mid)
        assert rec is not None
        out.append(raw_record(rec))
    return out


def _yjs_doc(records: Sequence[dict[str, Any]]) -> tuple[Doc[Any], Map[Any], float]:
    """A document holding ``records`` and the seconds its local sets took."""
    doc: Doc[Any] = Doc()
    memories = doc.get("memories", type=Map)
    start = time.perf_counter()
    with doc.transaction():
        for rec in records:
            memories[rec["id"]] = rec
    return doc, memories, time.perf_counter() - start


def sync_curve(root: Path, n: int, ks: Sequence[int]) -> SyncFigures:
    """Bytes shipped by memmesh and Yjs for each K of ``ks`` (see the module doc)."""
    if sum(ks) > n:
        raise ValueError(f"the K values must add up to at most {n} memories")
    src, ids = build_source(root / "yjs-src", n, metadata=True)
    records = _records(src, ids)
    ysrc, ymap, set_s = _yjs_doc(records)

    with Replica.open(root / "yjs-empty", durable=False) as empty:
        payload = src.sync_changes(empty.sync_summary(), max_bytes=None)
    update = ysrc.get_update()
    # three applies of the full state into fresh empty replicas / documents, interleaved;
    # the medians (one noisy moment on a shared machine moves neither)
    replicas: list[Replica] = []
    docs: list[Doc[Any]] = []
    walls: list[float] = []
    ywalls: list[float] = []
    for i in range(3):
        replicas.append(Replica.open(root / f"yjs-dst{i}", durable=False))
        start = time.perf_counter()
        replicas[-1].sync_apply(payload)
        walls.append(time.perf_counter() - start)
        docs.append(Doc())
        start = time.perf_counter()
        docs[-1].apply_update(update)
        ywalls.append(time.perf_counter() - start)
    apply_s, yapply_s = sorted(walls)[1], sorted(ywalls)[1]
    dst, ydst = replicas[0], docs[0]
    for extra in replicas[1:]:
        extra.close()
    assert dst.state_digest() == src.state_digest()
    assert ydst.get("memories", type=Map).to_py() == ymap.to_py()

    curve = []
    cursor = 0
    for k in ks:
        picked = ids[cursor:cursor + k]
        cursor += k
        changed = []
        for j, mid in enumerate(picked):
            src.update(mid, text_for(n + cursor + j), actor="agent-x")
            rec = src.get(mid)
            assert rec is not None
            changed.append(raw_record(rec))
            ymap[mid] = changed[-1]
        delta = src.sync_changes(dst.sync_summary(), max_bytes=None)
        ydelta = ysrc.get_update(ydst.get_state())
        dst.sync_apply(delta)
        ydst.apply_update(ydelta)
        assert dst.state_digest() == src.state_digest()
        full_raw = len(packb(_records(src, ids)))
        curve.append(SyncPoint(k, len(delta), len(ydelta), len(packb(changed)), full_raw))
    assert ydst.get("memories", type=Map).to_py() == ymap.to_py()
    for r in (src, dst):
        r.close()
    return SyncFigures(n, curve, len(payload), len(update), n / apply_s, n / yapply_s,
                       n / set_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="memories")
    parser.add_argument("--ks", default="1,10,100,1000,5000", help="changed memories")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memmesh-bench-yjs-") as tmp:
        figures = sync_curve(Path(tmp), args.n, [int(k) for k in args.ks.split(",")])
    print(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reads: memmesh ``get`` and ``list`` by scope against raw py-lmdb in the same run.

    python -m memmesh.benchmarks.bench_reads [-n N]

The baseline is the physical floor of an LMDB store of the same memories: each record
packed with msgpack (``bench_storage.raw_record``) under its id, plus a second database
keyed ``user_id NUL id`` so that one user's records lie contiguously (a perfectly
clustered scope index).  A raw ``get`` is one read transaction, one ``txn.get`` and
one ``unpackb``; a raw ``list`` is one read transaction and a cursor walk over the
user's prefix, unpacking each record.  memmesh does what it does for an application:
``Replica.get`` (key state decoded, standing version chosen, expiry checked) and
``Replica.list(user_id=...)`` (scope index, records sorted oldest first).

Rates are best of ``repeat`` interleaved rounds: gets per second, listed records per
second.
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

import lmdb

from memmesh.benchmarks.bench_storage import build_source, raw_record
from memmesh.crdt import packb, unpackb
from memmesh.storage import Replica


def _best(repeat: int, fns: Sequence[Callable[[], object]]) -> list[float]:
    """Best seconds of each function over ``repeat`` interleaved rounds."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def raw_store(path: Path, records: Sequence[dict[str, Any]]) -> lmdb.Environment:
    """The baseline store: records by id, and by ``user_id NUL id``."""
    env = lmdb.open(str(path), map_size=1 << 32, max_dbs=2, sync=False, metasync=False)
    by_id = env.open_db(b"by_id")
    by_user = env.open_db(b"by_user")
    with env.begin(write=True) as txn:
        for rec in records:
            value = packb(rec)
            txn.put(rec["id"].encode(), value, db=by_id)
            txn.put(f"{rec['user_id']}\x00{rec['id']}".encode(), value, db=by_user)
    return env


def read_rates(replica: Replica, ids: Sequence[str], root: Path, samples: int,
               users: int = 20, repeat: int = 3) -> dict[str, Any]:
    """Gets/s and listed records/s of ``replica`` and of the raw store of its memories."""
    records = []
    for mid in ids:
        rec = replica.get(mid)
        assert rec is not None
        records.append(raw_record(rec))
    env = raw_store(root / "raw-reads", records)
    by_id = env.open_db(b"by_id")
    by_user = env.open_db(b"by_user")
    rng = random.Random(11)
    sample = [rng.choice(ids) for _ in range(samples)]
    keys = [mid.encode() for mid in sample]
    scopes = sorted({rec["user_id"] for rec in records})[:users]

    def ours_get() -> None:
        for mid in sample:
            replica.get(mid)

    def raw_get() -> None:
        for key in keys:
            with env.begin(db=by_id) as txn:
                unpackb(txn.get(key))

    def ours_list() -> int:
        return sum(len(replica.list(user_id=u)) for u in scopes)

    def raw_list() -> int:
        listed = 0
        for u in scopes:
            prefix = f"{u}\x00".encode()
            with env.begin(db=by_user) as txn:
                cursor = txn.cursor()
                if cursor.set_range(prefix):
                    for key, value in cursor:
                        if not key.startswith(prefix):
                            break
                        unpackb(value)
                        listed += 1
        return listed

    listed = ours_list()
    assert listed == raw_list() > 0
    t_get, t_raw_get, t_list, t_raw_list = _best(repeat, [ours_get, raw_get, ours_list,
                                                          raw_list])
    env.close()
    return {"memories": len(ids), "gets": samples, "get_per_s": samples / t_get,
            "raw_get_per_s": samples / t_raw_get, "scopes": len(scopes), "listed": listed,
            "list_records_per_s": listed / t_list, "raw_list_records_per_s": listed / t_raw_list}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="memories")
    parser.add_argument("--samples", type=int, default=5000, help="gets per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memmesh-bench-reads-") as tmp:
        replica, ids = build_source(Path(tmp) / "src", args.n, metadata=True)
        with replica:
            figures = read_rates(replica, ids, Path(tmp), args.samples)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Retirements interleaved with writes, restarts and partial exchanges never lose a write
nor stop convergence, and once replicas agree none re-ships anything nor names an origin
it holds exactly through its retirement entry (issue 17, deliverable 3)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import ticking

from memmesh.crdt import unpackb
from memmesh.storage import Replica
from memmesh.storage import _retired as rt

N = 3
_op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, N - 1)),
    st.tuples(st.just("sync"), st.integers(0, N - 1), st.integers(0, N - 1),
              st.sampled_from((None, 200))),
    st.tuples(st.just("retire"), st.integers(0, N - 1)),
    st.tuples(st.just("restart"), st.integers(0, N - 1)),
    st.tuples(st.just("unseen"), st.integers(0, N - 1)),
)


def exchange(src: Replica, dst: Replica, max_bytes: int | None = None) -> int:
    """One summary -> changes -> apply; the states shipped."""
    payload = src.sync_changes(dst.sync_summary(), max_bytes=max_bytes)
    dst.sync_apply(payload)
    return len(unpackb(payload)["states"])  # type: ignore[index]


@settings(max_examples=30, deadline=None)
@given(st.lists(_op, max_size=30))
def test_retirements_interleaved_with_writes_and_restarts_converge(ops: list[Any]) -> None:
    clock = ticking()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"r{i}" for i in range(N)]
        replicas = [Replica.open(p, replica_id=f"r{i}", clock=clock)
                    for i, p in enumerate(paths)]
        written: list[str] = []
        try:
            for op in ops:
                kind, i = op[0], op[1]
                r = replicas[i]
                if kind == "write":
                    written.append(r.add(f"{i} {len(written)}", user_id="u"))
                elif kind == "sync" and i != op[2]:
                    exchange(r, replicas[op[2]], op[3])
                elif kind == "retire":
                    r.retire_origin()
                elif kind == "restart":
                    r.close()
                    replicas[i] = Replica.open(paths[i], clock=clock)
                elif kind == "unseen":
                    clock.advance(10)
                    r.retire_unseen(5)
            for _ in range(8):  # full mesh until nothing moves
                moved = sum(exchange(a, b) for a in replicas for b in replicas if a is not b)
                if not moved and len({x.state_digest() for x in replicas}) == 1:
                    break
            assert len({x.state_digest() for x in replicas}) == 1
            assert all(x.get(k) is not None for x in replicas for k in written)
            assert sum(exchange(a, b) for a in replicas for b in replicas if a is not b) == 0
            for x in replicas:  # the omission rule holds
                listed: dict[str, int] = unpackb(x.sync_summary())["wm"]  # type: ignore[index]
                with x._env.read() as txn:
                    assert all(o == x.origin or rt.retired(txn, o) != c
                               for o, c in listed.items())
        finally:
            for x in replicas:
                x.close()

"""Timeline size: one memory's replicated history after N updates, with and without
compaction (issue 15: "the history size per memory after 1,000 updates").

    .venv/bin/python -m memmesh.benchmarks.bench_timeline [--updates N] [--json FILE]

For each ``history_limit`` (the default, and ``MAX_KEEP``: never compact) a replica adds
one memory and updates it N times (texts of about 30 characters, one actor); the figures
are the events its timeline keeps (``len(history(id))``) and the bytes of its key state
(what the replica stores and hashes, and what ``sync_changes`` ships for it: states
travel whole to a replica that may lack them), the same on a second replica after one
sync, the bytes ``sync_changes`` ships that peer for one more update, and the bytes the
peer ships back for an update of its own (without the writer's events, which the writer
holds). Sizes only, no timings: the figures repeat exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from memmesh.crdt.keystate import DEFAULT_KEEP, MAX_KEEP
from memmesh.storage import Replica
from memmesh.storage._digest import state_key


def _state_bytes(replica: Replica, memory_id: str) -> int:
    with replica._env.read() as txn:
        raw = txn.get("state", state_key(memory_id))
    return 0 if raw is None else len(raw)


def measure(updates: int, history_limit: int, root: Path) -> dict[str, Any]:
    clock = iter(range(1_700_000_000_000, 1_800_000_000_000))
    with Replica.open(root / f"a{history_limit}", replica_id="ra", durable=False,
                      history_limit=history_limit, clock=lambda: next(clock)) as a, \
            Replica.open(root / f"b{history_limit}", replica_id="rb", durable=False,
                         clock=lambda: next(clock)) as b:
        mid = a.add("the launch is on day 0 of the plan", actor="planner", user_id="u")
        for i in range(1, updates + 1):
            a.update(mid, f"the launch is on day {i} of the plan", actor="planner")
        b.sync_apply(a.sync_changes(b.sync_summary()))
        assert b.history(mid) == a.history(mid)
        row = {"history_limit": history_limit, "updates": updates,
               "events": len(a.history(mid)), "state_bytes": _state_bytes(a, mid),
               "events_on_peer": len(b.history(mid)),
               "state_bytes_on_peer": _state_bytes(b, mid)}
        # one more update by the writer: the next sync ships the peer the key with its
        # timeline (the peer may lack this origin's events: it lacked the newest)
        a.update(mid, f"the launch is on day {updates + 1} of the plan", actor="planner")
        row["sync_bytes_next_update"] = len(a.sync_changes(b.sync_summary()))
        b.sync_apply(a.sync_changes(b.sync_summary()))
        # an update by the peer: the writer holds every event of its own origin, so
        # they stay home (keystate.unseen_by)
        b.update(mid, "the launch is on day 0 after all", actor="reviewer")
        row["sync_bytes_other_writer"] = len(b.sync_changes(a.sync_summary()))
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(args.updates, limit, Path(tmp)) for limit in (DEFAULT_KEEP, MAX_KEEP)]
    for row in rows:
        label = "never" if row["history_limit"] == MAX_KEEP else row["history_limit"]
        print(f"history_limit={label}: {row['updates']} updates -> {row['events']} events,"
              f" {row['state_bytes']} bytes per memory (peer: {row['events_on_peer']} events,"
              f" {row['state_bytes_on_peer']} bytes); the next update syncs"
              f" {row['sync_bytes_next_update']} bytes, the peer's own update"
              f" {row['sync_bytes_other_writer']} bytes back")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

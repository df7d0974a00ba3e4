"""Scenario ``retire``: members come and go; a live member's summary stays bounded.

``N`` long-lived members (each writes a memory) gossip with the real sync policy over
the simulated network while ``writes`` short-lived members come and go, each writing
one memory and retiring its origin (``Replica.retire_origin``: the graceful leave of
docs/internals.md, "Retired origins") before it leaves:

* the first ``FULL_MEMBERS`` are full members: they join (a simulated node that pulls
  the fleet's state), write, retire their origin a round later and leave gracefully a
  round after that, about ``2 N`` alive at once;
* the others are contributors, so that 10k fit in minutes: each opens a replica, writes,
  hands its write and then its retirement entry to a random long-lived member through
  the sync primitives (summary -> changes -> apply, the payloads the policy ships) and
  is gone. A full member downloads the whole state and table when it joins, which makes
  a run quadratic in the members that ever lived.

The report gives a long-lived member's summary bytes against the members that ever
lived, sampled as they come and go, beside the summary the same replica would send
without retirement (every retired origin it holds listed at its counter: issue 17's
"before", ~20 B per member that ever wrote), the retirement table's size there, the
bytes of retirement entries (``Changes.retired``) the long-lived members' payloads
carried, and whether every long-lived member holds every contributed memory.
"""

from __future__ import annotations

import shutil
from typing import Any

from memmesh.crdt import packb, unpackb
from memmesh.storage import Replica
from memmesh.storage._sketch import SKETCH_BYTES

from .ids import incarnations, memory_ids
from .runner import RunContext, converged_report
from .writelog import MemoryInfo

LIFE_ROUNDS = 3  # join, write a round later, retire, leave: about three rounds each
FULL_MEMBERS = 100  # short-lived members that run as full simulated nodes
CONTRIBUTORS_PER_ROUND = 20
SAMPLES = 40
#: A summary's constant part: the envelope and the table's fingerprint (256 B) and its
#: difference sketch (``rti``, with its key and length prefix); the rest is per live
#: member.
SUMMARY_CONSTANT = 256 + SKETCH_BYTES + 8


class _Counted:
    """A replica whose ``sync_changes`` counts the retirement entries it ships."""

    def __init__(self, replica: Replica, tally: dict[str, int]) -> None:
        self._replica = replica
        self._tally = tally

    def __getattr__(self, name: str) -> Any:
        return getattr(self._replica, name)

    def sync_changes(self, summary: bytes, **kwargs: Any) -> bytes:
        payload: bytes = self._replica.sync_changes(summary, **kwargs)
        self._tally["payload_bytes"] += len(payload)
        entries = unpackb(payload).get("retired")  # type: ignore[union-attr]
        if entries:
            self._tally["retired_bytes"] += len(packb(entries))
            self._tally["retired_entries"] += len(entries)
        return payload


def _summary_sizes(replica: Replica) -> tuple[int, int, int]:
    """``replica``'s summary bytes, the bytes it would have without retirement (each
    origin it omits listed at its final counter), and its table's entries."""
    from memmesh.storage import _retired as rt

    summary = replica.sync_summary()
    listed: dict[str, int] = unpackb(summary)["wm"]  # type: ignore[index]
    extra = 0
    entries = 0
    with replica._env.read() as txn:
        for origin, final in rt.entries(txn, set(range(rt.BUCKETS))):
            entries += 1
            if origin not in listed:
                extra += len(packb({origin: final})) - 1
    return len(summary), len(summary) + extra, entries


def retire(ctx: RunContext) -> dict[str, Any]:
    """N long-lived members while ``writes`` short-lived ones come, write, retire, go."""
    opts = ctx.options
    n = max(2, opts.nodes)
    total = opts.writes
    full = min(total, FULL_MEMBERS)
    tally = {"payload_bytes": 0, "retired_bytes": 0, "retired_entries": 0}
    cluster = ctx.cluster()
    names = [cluster.node_name(i) for i in range(n)]
    for name in names:
        cluster.add_node(name, wrap=lambda r: _Counted(r, tally))  # type: ignore[arg-type,return-value]
    work = cluster.workload_rng
    interval = cluster.interval_us
    for name in names:  # the long-lived members write too: their origins stay listed
        cluster.add(name, f"{name} stays", app_id="fleet", user_id="u")
    cluster.run_for(1)
    start = cluster.loop.now_us
    step = max(1, LIFE_ROUNDS * interval // (2 * n))
    rest = start + full * step + (LIFE_ROUNDS + 1) * interval
    pace = max(1, interval // CONTRIBUTORS_PER_ROUND)
    end = rest + (total - full) * pace + interval
    cluster.progress_total_us = end - start + opts.max_rounds * interval
    samples: list[dict[str, int]] = []
    every = max(1, total // SAMPLES)
    lived = [0]
    contributed: list[str] = []

    def sample() -> None:
        replica = cluster.nodes[names[0]].replica
        assert replica is not None
        size, without, entries = _summary_sizes(replica)
        samples.append({"members_ever": n + lived[0], "live": len(cluster.members),
                        "summary_bytes": size,
                        "summary_bytes_without_retirement": without,
                        "table_entries": entries})

    def came() -> None:
        lived[0] += 1
        if lived[0] % every == 0:
            sample()

    def born(k: int) -> None:
        name = f"t{k:05d}"
        node = cluster.join(name)
        node.pull_from(names[work.randrange(n)])
        came()
        cluster.loop.call_at(cluster.loop.now_us + interval, lambda: write(name))

    def write(name: str) -> None:
        node = cluster.nodes[name]
        if not node.up:
            return
        cluster.add(name, f"{name} was here", app_id="fleet", user_id="u")
        cluster.loop.call_at(cluster.loop.now_us + interval, lambda: leave(name))

    def leave(name: str) -> None:
        node = cluster.nodes[name]
        if node.up and node.replica is not None:
            node.replica.retire_origin()
        cluster.loop.call_at(cluster.loop.now_us + interval, lambda: cluster.leave(name))

    def contribute(k: int) -> None:
        name = f"c{k:05d}"
        target = cluster.nodes[names[work.randrange(n)]]
        path = cluster.workdir / name
        with Replica.open(path, replica_id=name, durable=False, clock=target.clock,
                          id_factory=memory_ids(cluster.seed, name),
                          incarnation_factory=incarnations(cluster.seed, name)) as mine:
            memory_id = mine.add(f"{name} was here", app_id="fleet", user_id="u")
            contributed.append(memory_id)
            # shared, in the fleet's scope (checked below, as the member is gone)
            cluster.writelog.created(MemoryInfo(memory_id, name, "fleet", "u", "shared",
                                                "mv", "default"))
            for _ in range(2):  # the write, then the retirement entry
                theirs = target.replica
                assert theirs is not None
                theirs.sync_apply(mine.sync_changes(theirs.sync_summary()))
                mine.retire_origin()
        shutil.rmtree(path)
        came()

    for k in range(full):
        cluster.loop.call_at(start + k * step, lambda k=k: born(k))
    for k in range(full, total):
        cluster.loop.call_at(rest + (k - full) * pace, lambda k=k: contribute(k))
    cluster.loop.run(end)
    report = converged_report(cluster, n, opts.max_rounds)
    sample()
    last = samples[-1]
    everywhere = all(node.replica is not None and node.replica.get(m) is not None
                     for node in (cluster.nodes[x] for x in names) for m in contributed)
    report["retire"] = {
        "long_lived": n,
        "short_lived": total,
        "full_members": full,
        "contributors": total - full,
        "members_ever": n + total,
        "members_at_end": len(cluster.members),
        "contributed_memories_everywhere": everywhere,
        "summary_bytes": last["summary_bytes"],
        "summary_constant_bytes": SUMMARY_CONSTANT,
        "bytes_per_live_member_over_constant": (last["summary_bytes"] - SUMMARY_CONSTANT)
        / last["live"],
        "summary_bytes_without_retirement": last["summary_bytes_without_retirement"],
        "table_entries": last["table_entries"],
        "retired_entry_bytes_shipped": tally["retired_bytes"],
        "retired_entries_shipped": tally["retired_entries"],
        "payload_bytes_long_lived": tally["payload_bytes"],
        "table_share_of_payload_bytes": tally["retired_bytes"] / max(1, tally["payload_bytes"]),
        "samples": samples,
    }
    cluster.close()
    return report

"""Scenario ``retire``: members come and go; a live member's summary stays bounded.

``N`` long-lived members; ``writes`` short-lived members join one after another (about
``2 N`` alive at once), each pulls from a long-lived member, writes one memory, retires
its origin (``Replica.retire_origin``: the graceful leave of docs/internals.md, "Retired
origins") a round later and leaves gracefully (drains to a peer) a round after that.
Every exchange is the real sync policy over the simulated network.

The report gives a long-lived member's summary bytes against the members that ever
lived, sampled as they come and go, beside the summary the same replica would send
without retirement (every retired origin it holds listed at its counter: issue 17's
"before", ~20 B per member that ever wrote), the retirement table's size there, and
the bytes of retirement entries (``Changes.retired``) the long-lived members' payloads
carried.
"""

from __future__ import annotations

from typing import Any

from memmesh.crdt import packb, unpackb
from memmesh.storage import Replica

from .runner import RunContext, converged_report

LIFE_ROUNDS = 3  # join, write a round later, retire, leave: about three rounds each
SAMPLES = 40


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
    """N long-lived members while ``writes`` short-lived ones join, write, retire, leave."""
    opts = ctx.options
    n = max(2, opts.nodes)
    total = opts.writes
    tally = {"payload_bytes": 0, "retired_bytes": 0, "retired_entries": 0}
    cluster = ctx.cluster()
    names = [cluster.node_name(i) for i in range(n)]
    for name in names:
        cluster.add_node(name, wrap=lambda r: _Counted(r, tally))  # type: ignore[arg-type,return-value]
    work = cluster.workload_rng
    interval = cluster.interval_us
    cluster.run_for(1)
    start = cluster.loop.now_us
    concurrent = 2 * n
    step = max(1, LIFE_ROUNDS * interval // concurrent)
    cluster.progress_total_us = total * step + (opts.max_rounds + LIFE_ROUNDS) * interval
    samples: list[dict[str, int]] = []
    every = max(1, total // SAMPLES)
    lived = [0]

    def sample() -> None:
        replica = cluster.nodes[names[0]].replica
        assert replica is not None
        size, without, entries = _summary_sizes(replica)
        samples.append({"members_ever": n + lived[0], "live": len(cluster.members),
                        "summary_bytes": size,
                        "summary_bytes_without_retirement": without,
                        "table_entries": entries})

    def born(k: int) -> None:
        name = f"t{k:05d}"
        node = cluster.join(name)
        node.pull_from(names[work.randrange(n)])
        lived[0] += 1
        cluster.loop.call_at(cluster.loop.now_us + interval, lambda: write(name))
        if lived[0] % every == 0:
            sample()

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

    for k in range(total):
        cluster.loop.call_at(start + k * step, lambda k=k: born(k))
    cluster.loop.run(start + total * step + (LIFE_ROUNDS + 1) * interval)
    report = converged_report(cluster, n, opts.max_rounds)
    sample()
    last = samples[-1]
    report["retire"] = {
        "long_lived": n,
        "short_lived": total,
        "members_ever": n + total,
        "members_at_end": len(cluster.members),
        "bytes_per_live_member_over_256": (last["summary_bytes"] - 256) / last["live"],
        "summary_bytes": last["summary_bytes"],
        "summary_bytes_without_retirement": last["summary_bytes_without_retirement"],
        "table_entries": last["table_entries"],
        "retired_entry_bytes_shipped": tally["retired_bytes"],
        "retired_entries_shipped": tally["retired_entries"],
        "payload_bytes_long_lived": tally["payload_bytes"],
        "samples": samples,
    }
    cluster.close()
    return report

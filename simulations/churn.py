"""Scenario ``churn``: nodes crash and restart, join and leave while agents write.

During ``CHURN_ROUNDS`` rounds, at random instants: ``N/5`` crashes (each node comes
back with its durable replica 1 to 5 rounds later: sessions and links are lost, the
LMDB state is not), ``N/10`` new nodes join empty, ``N/10`` nodes leave gracefully (they
drain their own writes to a peer first); with ``--partitions`` three random partitions
of two to five rounds each come on top. Writes and reads go to random live nodes
throughout. Then the churn stops, everyone down is restarted, and the report gives the
rounds to convergence from there. With loss, duplication, reordering and clock skew
from the options this is the torture run of the issue.
"""

from __future__ import annotations

from typing import Any

from .runner import RunContext, converged_report

CHURN_ROUNDS = 20


def churn(ctx: RunContext) -> dict[str, Any]:
    """N nodes under crashes, restarts, joins, leaves (and partitions) for 20 rounds."""
    opts = ctx.options
    n = max(3, opts.nodes)
    cluster = ctx.cluster(resolve=True)
    cluster.add_nodes(n)
    cluster.progress_total_us = (CHURN_ROUNDS + 25) * cluster.interval_us
    faults = cluster.fault_rng
    work = cluster.workload_rng
    scope = {"app_id": "fleet", "user_id": "ops"}
    cluster.run_for(1)
    start = cluster.loop.now_us
    span = CHURN_ROUNDS * cluster.interval_us
    interval = cluster.interval_us
    next_id = [n]
    memories: list[str] = []
    counter = [0]

    def live_writer() -> str | None:
        live = [node.node_id for node in cluster.up_nodes() if not node.draining]
        return live[work.randrange(len(live))] if live else None

    def write() -> None:
        node = live_writer()
        if node is None:
            return
        counter[0] += 1
        if memories and work.random() < 0.5 and cluster.update(
            node, memories[work.randrange(len(memories))], f"v{counter[0]}"
        ):
            return
        memories.append(cluster.add(node, f"m{counter[0]}", **scope))

    def read() -> None:
        node = live_writer()
        if node is not None and memories:
            cluster.read(node, memories[work.randrange(len(memories))])

    def crash() -> None:
        victim = live_writer()
        if victim is None:
            return
        cluster.crash(victim)
        back = cluster.loop.now_us + faults.randint(1, 5) * interval
        cluster.loop.call_at(min(back, start + span), lambda v=victim: cluster.restart(v))

    def join() -> None:
        cluster.join(cluster.node_name(next_id[0]))
        next_id[0] += 1

    def leave() -> None:
        victim = live_writer()
        if victim is not None and len(cluster.members) > 3:
            cluster.leave(victim)

    def partition() -> None:
        members = list(cluster.members)
        faults.shuffle(members)
        parts = faults.randint(2, 3)
        cluster.partition([members[i::parts] for i in range(parts)])
        heal_at = cluster.loop.now_us + faults.randint(2, 5) * interval
        cluster.loop.call_at(min(heal_at, start + span), cluster.heal)

    schedule = [(crash, max(1, n // 5)), (join, max(1, n // 10)), (leave, max(1, n // 10))]
    if opts.partitions:
        schedule.append((partition, 3))
    for action, count in schedule:
        for _ in range(count):
            cluster.loop.call_at(start + faults.randrange(span), action)
    for _ in range(opts.writes):
        cluster.loop.call_at(start + work.randrange(span), write)
    for _ in range(2 * opts.writes):
        cluster.loop.call_at(start + work.randrange(span), read)

    cluster.loop.run(start + span)
    cluster.heal()
    for node_id in list(cluster.members):
        cluster.restart(node_id)
    report = converged_report(cluster, n, opts.max_rounds)
    report["churn"] = {
        "churn_rounds": CHURN_ROUNDS,
        "members_at_end": len(cluster.members),
        "joined": next_id[0] - n,
        "faults": dict(sorted(cluster.metrics.counters.get("faults", {}).items())),
    }
    cluster.close()
    return report

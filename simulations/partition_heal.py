"""Scenario ``partition-heal``: two halves write apart, then the network heals.

Before the partition every node holds the same few shared memories (multi-value). The
network is cut into two halves for ``partition_rounds``; each half keeps updating those
memories and adding new ones. Concurrent updates of one memory from both sides become
concurrent versions (a conflict) once the halves meet again; the elected arbiter
resolves each one once for the fleet. The report gives the rounds from the heal to
convergence (conflicts resolved included), the conflicts and the resolver calls.
"""

from __future__ import annotations

from typing import Any

from .runner import RunContext, converged_report

PARTITION_ROUNDS = 10


def partition_heal(ctx: RunContext) -> dict[str, Any]:
    """N nodes, split in two halves for 10 rounds with ``writes`` writes, then healed."""
    opts = ctx.options
    n = max(2, opts.nodes)
    cluster = ctx.cluster(resolve=True)
    names = cluster.add_nodes(n)
    cluster.progress_total_us = (PARTITION_ROUNDS + 20) * cluster.interval_us
    rng = cluster.workload_rng
    scope = {"app_id": "team", "user_id": "lead"}
    shared = [cluster.add(names[0], f"plan-{k}", **scope) for k in range(max(2, opts.writes // 4))]
    before = cluster.loop.now_us
    settled = cluster.run_until_converged(before, opts.max_rounds)

    halves = [names[: n // 2], names[n // 2 :]]
    cluster.partition(halves)
    start = cluster.loop.now_us
    span = PARTITION_ROUNDS * cluster.interval_us
    counter = [0]

    def write(node: str) -> None:
        counter[0] += 1
        if rng.random() < 0.7:
            cluster.update(node, shared[rng.randrange(len(shared))], f"edit-{counter[0]}")
        else:
            cluster.add(node, f"note-{counter[0]}", **scope)

    for _ in range(opts.writes):
        side = halves[rng.randrange(2)]
        node = side[rng.randrange(len(side))]
        cluster.loop.call_at(start + rng.randrange(span), lambda nd=node: write(nd))
    for _ in range(2 * opts.writes):
        node = names[rng.randrange(n)]
        target = shared[rng.randrange(len(shared))]
        cluster.loop.call_at(start + rng.randrange(span),
                             lambda nd=node, t=target: cluster.read(nd, t))
    cluster.loop.run(start + span)
    cluster.heal()
    healed = cluster.loop.now_us
    report = converged_report(cluster, n, opts.max_rounds)
    report["partition"] = {
        "halves": [len(h) for h in halves],
        "partition_rounds": PARTITION_ROUNDS,
        "converged_before_partition": settled.converged,
        "heal_round": healed // cluster.interval_us,
    }
    cluster.close()
    return report

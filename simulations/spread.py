"""Scenario ``spread``: one write, N nodes: how many rounds until everybody has it?

Push-pull anti-entropy spreads a rumour to all N nodes in about log3 N + O(ln ln N)
rounds (Karp, Schindelhauer, Shenker, Vöcking, "Randomized Rumor Spreading", FOCS
2000); the report compares the measured rounds with the looser bound
``log2 N + ln ln N`` (the issue's yardstick), and gives the arrival curve: the fraction
of nodes holding the write at the end of each round after it was made.
"""

from __future__ import annotations

import math
from typing import Any

from .runner import RunContext, arrival_curve, common_report


def epidemic_bound(n: int) -> float:
    """``log2 N + ln ln N`` rounds (0 for N < 3, where ln ln N is undefined or negative)."""
    if n < 3:
        return float(max(0, n - 1))
    return math.log2(n) + math.log(math.log(n))


def spread(ctx: RunContext) -> dict[str, Any]:
    """One memory written on ``n0000`` at round 1 of an N-node fleet (faults per options)."""
    opts = ctx.options
    cluster = ctx.cluster()
    cluster.add_nodes(opts.nodes)
    cluster.progress_total_us = (1 + min(opts.max_rounds, 3 * epidemic_bound(opts.nodes) + 5)) \
        * cluster.interval_us
    cluster.run_for(1)
    writer = cluster.node_name(0)
    memory_id = cluster.add(writer, "the rumour", user_id="u1", app_id="spread")
    cluster.track(memory_id)
    t0 = cluster.loop.now_us
    convergence = cluster.run_until_converged(t0, opts.max_rounds)
    arrivals = cluster.arrivals[memory_id]
    reached = len(arrivals)
    last = max(arrivals.values()) if reached == opts.nodes else None
    rounds_all = None if last is None else (last - t0) / cluster.interval_us
    bound = epidemic_bound(opts.nodes)
    report = common_report(cluster, convergence)
    cluster.close()
    report["spread"] = {
        "reached": reached,
        "write_round": t0 // cluster.interval_us,
        "rounds_to_reach_all": rounds_all,
        "epidemic_bound_rounds": bound,
        "within_bound": rounds_all is not None and rounds_all <= bound,
        "arrival_curve": arrival_curve(cluster, memory_id, t0, opts.nodes),
    }
    return report

"""Scenario ``fleet``: N agents serving M users under scoped ACLs, N up to 1000.

Agent ``i`` works for user ``u(i mod M)``; its ACL (``PeerScope(users={u})``) is what
its peers may ship it, so it never receives another user's memories. Every agent adds
a shared memory and a private, run-scoped one, and a third of them update a memory of
their user later. Every member is a gossip candidate of every other, as mDNS would
offer them.

Measured per fleet size (``--sizes``, default just ``--nodes``): rounds to convergence;
protocol bytes per node per round and in all (changes payloads and summaries apart, and
of the payloads those carrying data apart from empty answers), against what each node's
scope needs (``scope_bytes_per_node``: the payload that brings an empty replica of that
scope to the node's state, its ``sync_changes`` for an empty summary); and the size of
the summaries exchanged (``sync_summary``: one watermark per origin the node has seen:
the "vector clocks grow with the fleet" question). Gossip partners: the policy's kin
choice (issue 17). The plot ``metadata_vs_n.png`` shows summary size against N;
:func:`.plots.fleet_curves` draws rounds and bytes against N for several ``--users``.
"""

from __future__ import annotations

from typing import Any

from memmesh.storage import PeerScope
from memmesh.storage.wire import Changes, Summary

from .options import SimOptions
from .runner import RunContext, converged_report

WRITE_ROUNDS = 3


def _one_size(ctx: RunContext, n: int) -> dict[str, Any]:
    opts = ctx.options
    sized = SimOptions(**{**opts.as_dict(), "nodes": n, "sizes": tuple(opts.sizes)})
    cluster = ctx.cluster(sized)
    users = [f"u{j}" for j in range(min(opts.users, n))]
    names = [cluster.node_name(i) for i in range(n)]
    for i, name in enumerate(names):
        cluster.add_node(name, scope=PeerScope(apps=frozenset({"fleet"}),
                                              users=frozenset({users[i % len(users)]})))
    payloads = _observe_payloads(cluster, names,
                                 [PeerScope(apps=frozenset({"fleet"}), users=frozenset({u}))
                                  for u in users])
    rng = cluster.workload_rng
    start = cluster.loop.now_us
    span = WRITE_ROUNDS * cluster.interval_us
    shared: dict[str, list[str]] = {u: [] for u in users}

    def add(i: int) -> None:
        user = users[i % len(users)]
        shared[user].append(cluster.add(names[i], f"fact-{i}", app_id="fleet", user_id=user))
        cluster.add(names[i], f"scratch-{i}", app_id="fleet", user_id=user,
                    run_id=f"run-{i}", tier="private")

    def update(i: int) -> None:
        user = users[i % len(users)]
        node = cluster.nodes[names[i]]
        mine = [m for m in shared[user] if node.replica.get(m) is not None]
        if mine:
            cluster.update(names[i], mine[rng.randrange(len(mine))], f"fact-{i}-v2")

    for i in range(n):
        cluster.loop.call_at(start + rng.randrange(span), lambda i=i: add(i))
    for i in range(0, n, 3):
        cluster.loop.call_at(start + span + rng.randrange(span), lambda i=i: update(i))
    cluster.loop.run(start + 2 * span)
    report = converged_report(cluster, n, opts.max_rounds)
    report["users"] = len(users)
    m = cluster.metrics
    report["bytes_total_per_node"] = sum(m.bytes_by_node.values()) / n
    report["changes_bytes_per_node"] = sum(r.changes_bytes for r in m.rounds) / n
    report["summary_bytes_per_node"] = sum(r.summary_bytes for r in m.rounds) / n
    report["data_bytes_per_node"] = payloads["data"] / n
    report["empty_payloads_per_node"] = payloads["empty"] / n
    report["scope_bytes_per_node"] = _scope_need(cluster, names)
    cluster.close()
    return report


def _observe_payloads(cluster: Any, names: list[str],
                      scopes: list[PeerScope]) -> dict[str, int]:
    """Split the changes payloads the cluster counts into envelopes (an answer with
    nothing new: ``rid`` and ``scope`` only, sent to close every pull) and data (states
    or claims): a payload is data when it is longer than the longest empty envelope."""
    longest = max(len(Changes(name, scope, (), {}).pack()) for name in (max(names, key=len),)
                  for scope in scopes)
    counts = {"data": 0, "empty": 0}
    record = cluster.metrics.changes

    def changes(node: str, size: int, *, push: bool) -> None:
        if size > longest:
            counts["data"] += size
        else:
            counts["empty"] += 1
        record(node, size, push=push)

    cluster.metrics.changes = changes
    return counts


def _scope_need(cluster: Any, names: list[str]) -> float:
    """Mean bytes an empty replica of each node's scope needs to reach its state: the
    node's answer to an empty summary (states, proofs and credentials included)."""
    empty = Summary("need", {}, bytes(32)).pack()
    sizes = [len(node.replica.sync_changes(empty, peer=node.scope))
             for node in (cluster.nodes[name] for name in names)]
    return sum(sizes) / len(sizes)


def fleet(ctx: RunContext) -> dict[str, Any]:
    """Sweep fleet sizes; report bytes per node and summary size for each."""
    opts = ctx.options
    sizes = sorted(set(opts.sizes)) if opts.sizes else [opts.nodes]
    runs = []
    for n in sizes:
        runs.append(_one_size(ctx, n))
    largest = dict(runs[-1])
    largest["nodes"] = sizes[-1]
    largest["converged"] = all(r["converged"] for r in runs)
    largest["invariants"] = {
        name: all(r["invariants"][name] for r in runs) for name in runs[-1]["invariants"]
    }
    largest["fleet"] = {
        "users": min(opts.users, sizes[-1]),
        "sizes": sizes,
        "per_size": [
            {
                "nodes": r["nodes"],
                "converged": r["converged"],
                "rounds_to_converge": r["rounds_to_converge"],
                "bytes_per_node": r["bytes_per_node"],
                "bytes_total_per_node": r["bytes_total_per_node"],
                "changes_bytes_per_node": r["changes_bytes_per_node"],
                "summary_bytes_per_node": r["summary_bytes_per_node"],
                "data_bytes_per_node": r["data_bytes_per_node"],
                "empty_payloads_per_node": r["empty_payloads_per_node"],
                "scope_bytes_per_node": r["scope_bytes_per_node"],
                "wire_bytes_per_node": r["wire_bytes_per_node"],
                "summary_bytes_mean": r["summary_bytes"]["mean"],
                "summary_bytes_max": r["summary_bytes"]["max"],
                "invariants": r["invariants"],
            }
            for r in runs
        ],
    }
    return largest

"""Scenario ``join``: a new empty member joins an N-member fleet that holds S bytes.

How much does it download? Pulling the whole state from every peer at once costs one
copy per peer (issue 17: 2 peers, 2.0 S); the sync policy's bulk lease
(``gossip/protocol/_bulk.py``) has it catch up from one peer while the others defer,
which costs one copy plus the protocol around it. The new member dials every member
at once, as a node given them as seeds does. S is measured in the same run: the
``CHANGES`` payloads that take an empty replica to a member's state, in the session's
chunk size. The fleet's memories are written and spread before the simulated clock
starts (storage calls, no network), so the report's bytes are the join's alone.
"""

from __future__ import annotations

from typing import Any

from memmesh.gossip.protocol import SyncPolicy
from memmesh.storage import Replica

from .cluster import SESSION_CONFIGS
from .runner import RunContext, converged_report


def _state_bytes(source: Any, probe: Any, max_bytes: int) -> int:
    """The payload bytes a full download from ``source`` into ``probe`` (empty) takes."""
    total = 0
    while True:
        changes = source.sync_changes(probe.sync_summary(), max_bytes=max_bytes)
        total += len(changes)
        if not probe.sync_apply(changes).applied:
            return total


def _received(policy: SyncPolicy) -> int:
    """Bytes a policy's links received so far, closed links' included."""
    closed = sum(policy.peers[p].bytes_in for p in policy.peers)
    return int(closed + sum(link.session.bytes_received for link in policy.links))


def join(ctx: RunContext) -> dict[str, Any]:
    """N members holding ``10 * writes`` memories; one more joins empty."""
    opts = ctx.options
    n = max(1, opts.nodes)
    cluster = ctx.cluster()
    names = cluster.add_nodes(n)
    for i in range(10 * opts.writes):  # no link is open yet: nothing is pushed
        cluster.add(names[i % n], f"memory {i}: " + "an agent's observation " * 6,
                    sync="pull", app_id="fleet", user_id=f"u{i % 7}")
    replicas: list[Any] = [cluster.nodes[name].replica for name in names]
    for target in replicas:
        for source in replicas:
            while source is not target and \
                    target.sync_apply(source.sync_changes(target.sync_summary())).applied:
                pass
    chunk = SESSION_CONFIGS[ctx.transport].chunk_bytes - 256
    with Replica.open(ctx.workdir / "probe", durable=False) as probe:
        size = _state_bytes(replicas[0], probe, chunk)
    joiner = cluster.join(cluster.node_name(n))
    for name in names:  # it dials every member at once, as a node dials its seeds
        joiner.pull_from(name)
    cluster.progress_total_us = (opts.max_rounds + 1) * cluster.interval_us
    report = converged_report(cluster, n + 1, opts.max_rounds)
    policy = joiner.policy
    assert policy is not None, "the joiner never crashes here"
    received = _received(policy)
    per_peer = {p: policy.peers[p].bytes_in for p in policy.peers}
    for link in policy.links:
        if link.peer_id is not None:
            per_peer[link.peer_id] = per_peer.get(link.peer_id, 0) + \
                link.session.bytes_received
    report["join"] = {
        "members": n,
        "memories": 10 * opts.writes,
        "state_bytes": size,
        "received_bytes": received,
        "received_over_state": received / size if size else 0.0,
        "peers_that_sent_over_a_tenth": sum(1 for b in per_peer.values() if b > size / 10),
        "bulk_deferred": policy.counters["bulk-deferred"],
    }
    cluster.close()
    return report

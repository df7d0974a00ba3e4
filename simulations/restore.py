"""Scenario ``restore``: a member restored from an old backup in the middle of a run.

The accident of issue 11, case 1 (Riak's kv679: a replica whose state went back in time
reused its version numbers, and its new writes were taken for old ones and lost). The
fleet writes; at round ``BACKUP_AT`` one member's replica directory is copied away (a
consistent hot copy, as a backup tool takes it); the member keeps writing and syncing;
once its writes since then are held by some other member (a restore that throws away
writes nobody else holds loses them, whatever the system) it crashes, the backup is put
in place of its directory and it restarts. It reopens as of the backup, mints under a
new incarnation, catches up from its peers, and it and the others keep writing: first
of all it updates its own memories as the backup knew them, which the original had
updated too (concurrent versions of one member, settled by the elected arbiter). The
report gives the rounds to convergence once the writes stop; the invariants check that
the restored copy's new writes and the original's writes after the backup all survive,
everywhere.
"""

from __future__ import annotations

from typing import Any

from .runner import RunContext, converged_report

BACKUP_AT = 3  # rounds into the first write phase
WRITE_ROUNDS = 8  # rounds of each write phase (before the crash, after the restart)
SETTLE_ROUNDS = 30  # at most this long for the member's writes to leave it
KEPT = 3  # memories of the member's own that both of its lineages update


def restore(ctx: RunContext) -> dict[str, Any]:
    """N members; one is restored from a backup taken ``BACKUP_AT`` rounds in."""
    opts = ctx.options
    n = max(3, opts.nodes)
    cluster = ctx.cluster(resolve=True)
    names = cluster.add_nodes(n)
    cluster.progress_total_us = (2 * WRITE_ROUNDS + 30) * cluster.interval_us
    work, faults = cluster.workload_rng, cluster.fault_rng
    victim = names[faults.randrange(n)]
    scope = {"app_id": "fleet", "user_id": "ops"}
    memories: list[str] = []
    counter = [0]
    quiet: set[str] = set()

    def write() -> None:
        writers = [m for m in names if cluster.nodes[m].up and m not in quiet]
        node = writers[work.randrange(len(writers))]
        counter[0] += 1
        cluster.write_any(node, memories, f"w{counter[0]} by {node}", work, **scope)

    def phase(rounds: int) -> None:
        start = cluster.loop.now_us
        for _ in range(opts.writes):
            cluster.loop.call_at(start + work.randrange(rounds * cluster.interval_us), write)

    cluster.run_for(1)
    # the member's own memories, known to the backup, then changed by both lineages
    own = [cluster.add(victim, f"{victim}'s memory {k}", **scope) for k in range(KEPT)]
    memories.extend(own)
    phase(WRITE_ROUNDS)
    cluster.run_for(BACKUP_AT)
    before_backup = _own_writes(cluster, victim)
    backup = cluster.backup(victim, f"{victim}-round-{BACKUP_AT}")
    for k, memory_id in enumerate(own):
        cluster.update(victim, memory_id, f"{victim}'s memory {k}, after the backup")
    cluster.run_for(WRITE_ROUNDS - BACKUP_AT)
    after_backup = _own_writes(cluster, victim) - before_backup

    quiet.add(victim)  # it stops writing; its news spreads before the crash
    settled_at = cluster.loop.now_us
    for _ in range(SETTLE_ROUNDS):
        if _elsewhere(cluster, victim):
            break
        cluster.run_for(1)
    cluster.crash(victim)
    crash_round = cluster.loop.now_us // cluster.interval_us
    cluster.restore(victim, backup)
    cluster.restart(victim)
    lacking = sum(1 for w in after_backup if not _holds(cluster, victim, w))
    quiet.discard(victim)
    ack_before = len(_own_writes(cluster, victim))
    for k, memory_id in enumerate(own):  # as of the backup: concurrent with the original
        cluster.update(victim, memory_id, f"{victim}'s memory {k}, by the restored copy")
    phase(WRITE_ROUNDS)
    caught_up = None
    for r in range(1, WRITE_ROUNDS + 1):
        cluster.run_for(1)
        if caught_up is None and all(_holds(cluster, victim, w) for w in after_backup):
            caught_up = r
    report = converged_report(cluster, n, opts.max_rounds)
    report["restore"] = {
        "member": victim,
        "backup_round": 1 + BACKUP_AT,
        "crash_round": crash_round,
        "rounds_for_its_writes_to_leave_it": (crash_round * cluster.interval_us
                                              - settled_at) // cluster.interval_us,
        "writes_before_backup": len(before_backup),
        "writes_after_backup_by_the_original": len(after_backup),
        "of_them_missing_on_the_restored_copy_at_restart": lacking,
        "rounds_until_the_restored_copy_held_them": caught_up,
        "writes_by_the_restored_copy": len(_own_writes(cluster, victim)) - ack_before,
        "origins": len({w[1].replica for w in _own_writes(cluster, victim)}),
    }
    cluster.close()
    return report


def _own_writes(cluster: Any, node_id: str) -> set[tuple[str, Any]]:
    """``(memory id, dot)`` of every acknowledged write of ``node_id`` so far."""
    return {(info.memory_id, w.dot) for info in cluster.writelog.memories.values()
            for w in info.writes if w.node == node_id}


def _holds(cluster: Any, node_id: str, write: tuple[str, Any]) -> bool:
    from .invariants import holds

    node = cluster.nodes[node_id]
    return node.up and holds(node.replica, write[0], [write[1]])


def _elsewhere(cluster: Any, node_id: str) -> bool:
    """Every acknowledged write of ``node_id`` is held by some other up member."""
    others = [m for m in cluster.members if m != node_id and cluster.nodes[m].up]
    return all(any(_holds(cluster, m, w) for m in others)
               for w in _own_writes(cluster, node_id))

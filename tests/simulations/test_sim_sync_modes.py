"""The simulator honours each write's stored delivery mode through the same
``SyncPolicy.local_changes`` as the trio node: pull-mode writes travel only in pulls."""

from __future__ import annotations

from pathlib import Path

import pytest

from memmesh.crdt import InvalidArgumentError
from memmesh.simulations import SimOptions
from memmesh.simulations.cluster import Cluster

SCOPE = {"app_id": "a", "user_id": "u"}


def push_bytes(cluster: Cluster) -> int:
    return sum(r.push_bytes for r in cluster.metrics.rounds)


def pull_bytes(cluster: Cluster) -> int:
    return sum(r.changes_bytes - r.push_bytes for r in cluster.metrics.rounds)


def test_pull_mode_writes_arrive_only_through_pulls_and_push_mode_ones_are_pushed(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=3, seed=1), tmp_path)
    try:
        names = cluster.add_nodes(3)
        cluster.run_for(3)  # links up, first pulls done
        before = pull_bytes(cluster)
        pulled = [cluster.add(names[0], f"project {k}", sync="pull", **SCOPE)
                  for k in range(3)]
        cluster.update(names[0], pulled[0], "project 0, edited")  # keeps pull
        assert cluster.run_until_converged(cluster.loop.now_us, 20).converged
        assert all(n.replica.get(m) is not None for n in cluster.up_nodes() for m in pulled)
        assert push_bytes(cluster) == 0 and pull_bytes(cluster) > before
        node = cluster.nodes[names[0]]
        assert node.policy is not None
        assert node.policy.counters["writes:pull"] == 4
        assert node.policy.counters["pushes"] == 0

        pushed = cluster.add(names[0], "a preference", sync="push", **SCOPE)
        assert cluster.run_until_converged(cluster.loop.now_us, 20).converged
        assert all(n.replica.get(pushed) is not None for n in cluster.up_nodes())
        assert push_bytes(cluster) > 0 and node.policy.counters["pushes"] >= 1
    finally:
        cluster.close()


def test_a_bad_sync_mode_in_the_workload_is_refused_and_logs_no_write(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=2, seed=1), tmp_path)
    try:
        names = cluster.add_nodes(2)
        with pytest.raises(InvalidArgumentError):
            cluster.add(names[0], "never", sync="soon", **SCOPE)
        assert cluster.writelog.memories == {}
        assert cluster.nodes[names[0]].replica.list() == []
    finally:
        cluster.close()

"""The simulator runs the gossip SyncPolicy: its clock fence and link rules show up in
simulated nodes exactly as in the trio node."""

from __future__ import annotations

from pathlib import Path

from memmesh.simulations import SimOptions
from memmesh.simulations.cluster import Cluster

YEAR_MS = 365 * 24 * 3600 * 1000


def test_a_simulated_node_a_year_ahead_fences_its_writes_until_its_clock_is_fixed(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=3, seed=2), tmp_path)
    try:
        nodes = [cluster.add_node(cluster.node_name(i), start=False) for i in range(3)]
        nodes[0].clock.skew_ms = YEAR_MS
        for node in nodes:
            node.start()
        cluster.run_for(5)
        assert nodes[0].replica.write_fence is not None
        assert "ahead" in nodes[0].replica.write_fence
        assert all(n.replica.write_fence is None for n in nodes[1:])
        assert cluster.metrics.counters["fenced"]["clock-ahead"] == 1
        nodes[0].clock.skew_ms = 0  # the clock is fixed: the next round sees it
        cluster.run_for(3)
        assert nodes[0].replica.write_fence is None
        assert cluster.metrics.counters["unfenced"]["clock-agrees"] == 1
    finally:
        cluster.close()


def test_simulated_nodes_keep_one_link_per_peer_and_at_most_max_links(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=12, seed=3), tmp_path, max_links=3)
    try:
        for i in range(12):
            cluster.add_node(cluster.node_name(i))
        memory = cluster.add(cluster.node_name(0), "hello", user_id="u", app_id="a")
        for _ in range(30):
            cluster.run_for(1)
            for node in cluster.up_nodes():
                assert node.policy is not None
                registered = node.policy.registered
                assert len(registered) <= 3
                assert len({lk.peer_id for lk in registered.values()}) == len(registered)
        assert cluster.converged_now()
        assert all(n.replica.get(memory) is not None for n in cluster.up_nodes())
    finally:
        cluster.close()

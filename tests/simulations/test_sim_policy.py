"""The simulator runs the gossip SyncPolicy: its clock fence, link rules and digest
repair show up in simulated nodes exactly as in the trio node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memmesh.crdt import packb, unpackb
from memmesh.simulations import SimOptions
from memmesh.simulations.cluster import Cluster
from memmesh.storage import PeerScope
from memmesh.storage._keystore import load, remove

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


# ----------------------------------------------------------------- digest repair


def _forge_claim(sender: Any, victim: Any, origin: str, counter: int) -> None:
    """Issue 11, case 4: a payload whose ``through`` claims ``{origin: counter}`` and that
    carries no state, from ``sender``'s replica to ``victim``'s."""
    plain = dict(unpackb(sender.sync_changes(victim.sync_summary())))
    base = unpackb(victim.sync_summary())["wm"].get(origin, 0)
    victim.sync_apply(packb(dict(plain, states=(), through={origin: (base, counter)})))


def _lose(replica: Any, key: str) -> None:
    """Delete one key through internals: the watermarks still say it is held."""
    def drop(txn: Any) -> None:
        skey, raw, state = load(txn, key)
        remove(txn, key, skey, raw, state)

    replica._env.write(drop)
    assert replica.get(key) is None


def test_a_forged_claim_in_a_simulated_fleet_cannot_keep_later_writes_away(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=6, seed=4), tmp_path)
    try:
        nodes = [cluster.add_node(cluster.node_name(i)) for i in range(6)]
        carol, mallory, victim = nodes[0], nodes[1], nodes[2]
        cluster.add(carol.node_id, "before the lie", user_id="u", app_id="a")
        assert cluster.run_until_converged(cluster.loop.now_us, 20).converged
        origin = str(carol.replica.origin)
        _forge_claim(mallory.replica, victim.replica, origin, 2**62)
        assert unpackb(victim.replica.sync_summary())["wm"][origin] == 2**62
        cluster.run_for(3)  # the victim no longer passes the claim on
        fooled = {n.node_id for n in nodes
                  if unpackb(n.replica.sync_summary())["wm"][origin] >= 2**62}
        assert fooled <= {victim.node_id}
        later = cluster.add(carol.node_id, "written after the lie", user_id="u", app_id="a")
        result = cluster.run_until_converged(cluster.loop.now_us, 70)  # ~2 repair intervals
        assert result.converged
        assert all(n.replica.get(later) is not None for n in nodes)
        assert all(unpackb(n.replica.sync_summary())["wm"][origin] < 2**62 for n in nodes)
    finally:
        cluster.close()


def test_a_key_lost_in_a_simulated_scoped_fleet_is_repaired_within_its_scope(
        tmp_path: Path) -> None:
    cluster = Cluster(SimOptions(nodes=6, seed=5), tmp_path)
    scopes = [PeerScope(apps=frozenset({"fleet"}), users=frozenset({f"u{i % 2}"}))
              for i in range(6)]
    try:
        nodes = [cluster.add_node(cluster.node_name(i), scope=scopes[i]) for i in range(6)]
        keys = [cluster.add(n.node_id, f"fact of {n.node_id}", app_id="fleet",
                            user_id=f"u{i % 2}") for i, n in enumerate(nodes)]
        assert cluster.run_until_converged(cluster.loop.now_us, 30).converged
        _lose(nodes[2].replica, keys[0])  # u0's memory, lost by a u0 node
        _lose(nodes[5].replica, keys[1])  # u1's memory, lost by a u1 node
        assert not cluster.converged_now()
        # each node checks once per repair interval (30 rounds), trying up to three peers
        # (one of the other scope class holds nothing to compare)
        result = cluster.run_until_converged(cluster.loop.now_us, 70)
        assert result.converged
        assert nodes[2].replica.get(keys[0]) is not None
        assert nodes[5].replica.get(keys[1]) is not None
        assert cluster.metrics.counters["diverged"]["digest"] >= 1
        assert all(n.replica.get(keys[1 - i % 2]) is None for i, n in enumerate(nodes))
    finally:
        cluster.close()

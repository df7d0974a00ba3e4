"""Small versions of every scenario, with the end-of-run invariants asserted."""

from __future__ import annotations

from typing import Any

import pytest

from memmesh.simulations import SimOptions, run_scenario
from memmesh.simulations.spread import epidemic_bound


def _assert_healthy(report: dict[str, Any]) -> None:
    assert report["converged"] is True, report["violations"]
    assert isinstance(report["rounds_to_converge"], int)
    assert report["invariants"] == {
        "converged": True,
        "no_acknowledged_write_lost": True,
        "no_private_leak": True,
        "no_out_of_acl_memory": True,
    }, report["violations"]
    assert report["bytes_per_node"] > 0


def test_spread_reaches_every_node_within_the_epidemic_bound() -> None:
    report = run_scenario("spread", SimOptions(nodes=32, seed=3))
    _assert_healthy(report)
    spread = report["spread"]
    assert spread["reached"] == 32
    assert spread["epidemic_bound_rounds"] == pytest.approx(epidemic_bound(32))
    assert spread["rounds_to_reach_all"] <= spread["epidemic_bound_rounds"]
    assert spread["arrival_curve"][0] == pytest.approx(1 / 32)
    assert spread["arrival_curve"][-1] == 1


def test_spread_converges_over_a_lossy_reordering_frame_transport() -> None:
    options = SimOptions(nodes=12, seed=2, loss=0.3, duplicate=0.1, reorder=0.1)
    report = run_scenario("spread", options, transport="frames")
    _assert_healthy(report)
    assert report["network"]["lost"] > 0


def test_zylos_pushed_preferences_are_fresher_than_pulled_project_state() -> None:
    report = run_scenario("zylos", SimOptions(seed=1, writes=15))
    _assert_healthy(report)
    staleness = report["staleness_ms"]
    assert set(staleness) == {"prefs", "project", "session"}
    assert staleness["session"]["max"] == 0  # private state is only ever read locally
    assert staleness["prefs"]["mean"] < staleness["project"]["mean"]


def test_partition_heal_makes_conflicts_that_the_arbiter_resolves() -> None:
    report = run_scenario("partition-heal", SimOptions(nodes=6, seed=4, writes=16))
    _assert_healthy(report)
    assert report["conflicts"] > 0
    assert report["resolver_calls"] >= report["conflicts"]
    assert report["partition"]["converged_before_partition"] is True


def test_churn_with_partitions_skew_and_loss_loses_no_acknowledged_write() -> None:
    options = SimOptions(
        nodes=10, seed=5, loss=0.2, duplicate=0.05, reorder=0.05, skew_ms=300_000,
        partitions=True, writes=20,
    )
    report = run_scenario("churn", options)
    _assert_healthy(report)
    faults = report["churn"]["faults"]
    assert faults["crash"] >= 1 and faults["restart"] >= 1
    assert faults["join"] >= 1 and faults["partition"] >= 1


def test_fleet_keeps_every_memory_inside_its_acl_scope() -> None:
    report = run_scenario("fleet", SimOptions(seed=1, users=2, sizes=(6, 12)))
    assert report["invariants"]["no_private_leak"] is True
    assert report["invariants"]["no_out_of_acl_memory"] is True
    sizes = [row["nodes"] for row in report["fleet"]["per_size"]]
    assert sizes == [6, 12]
    means = [row["summary_bytes_mean"] for row in report["fleet"]["per_size"]]
    assert means[0] < means[1]  # one watermark per origin: summaries grow with N


def test_fleet_with_scoped_acls_converges_and_loses_nothing() -> None:
    report = run_scenario("fleet", SimOptions(seed=1, users=2, sizes=(6, 12)))
    _assert_healthy(report)


def test_a_scoped_fleet_converges_within_twice_the_unscoped_spread_rounds() -> None:
    """Issue 17: members of one ACL class vouch for each other's scoped watermarks and
    pull from their kin, so 24 members over 3 users converge about as fast as one
    unscoped write spreads over 24 (before: relays could not claim, every exchange with
    a member of another class was wasted, and states were shipped again and again)."""
    fleet = run_scenario("fleet", SimOptions(seed=1, users=3, sizes=(24,)))
    spread = run_scenario("spread", SimOptions(seed=1, nodes=24))
    _assert_healthy(fleet)
    row = fleet["fleet"]["per_size"][0]
    assert row["converged"] and spread["converged"]
    assert row["rounds_to_converge"] <= 2 * max(1, spread["rounds_to_converge"])
    # the payloads carrying data, within twice what each member's scope needs
    assert row["data_bytes_per_node"] <= 2 * row["scope_bytes_per_node"]


def test_restore_keeps_every_write_of_a_restored_member_and_of_its_original() -> None:
    report = run_scenario("restore", SimOptions(nodes=6, seed=1))
    _assert_healthy(report)
    restore = report["restore"]
    assert restore["writes_after_backup_by_the_original"] >= 1
    assert restore["of_them_missing_on_the_restored_copy_at_restart"] >= 1
    assert restore["writes_by_the_restored_copy"] >= 1
    assert restore["origins"] == 2  # a new incarnation for the restored copy's writes


def test_skew_fences_a_member_a_year_ahead_and_hears_it_once_fixed() -> None:
    report = run_scenario("skew", SimOptions(nodes=6, seed=1))
    _assert_healthy(report)
    skew = report["skew"]
    assert skew["fenced_at_round"] is not None and skew["writes_refused_by_its_fence"] >= 1
    assert skew["its_states_refused_by_peers"].get("clock-ahead", 0) >= 1
    assert skew["others_memories_it_relayed_while_ahead"] >= 1


@pytest.mark.parametrize("seed", [1, 2])
def test_byzantine_member_cannot_make_honest_members_diverge_or_lose_writes(
        seed: int) -> None:
    report = run_scenario("byzantine", SimOptions(nodes=8, seed=seed))
    _assert_healthy(report)
    byz = report["byzantine"]
    assert len(byz["forgeries"]) == 7 and byz["forged_payloads_sent"] >= 7
    refused = byz["refused_by_honest_members"]
    assert {"clock-ahead", "clock-logical", "invalid"} <= set(refused)

"""Scenario ``join``: a new member joining a 5-member fleet downloads the state about
once (bytes counted, no timing; issue 17)."""

from __future__ import annotations

from memmesh.simulations import SimOptions, run_scenario


def test_a_member_joining_five_downloads_the_fleet_state_about_once() -> None:
    report = run_scenario("join", SimOptions(nodes=5, seed=2, writes=120))
    assert report["converged"] is True, report["violations"]
    assert all(report["invariants"].values()), report["violations"]
    join = report["join"]
    assert join["members"] == 5 and join["memories"] == 1200
    assert join["state_bytes"] > 256 * 1024  # more than one chunk
    assert join["received_over_state"] <= 1.1
    assert join["peers_that_sent_over_a_tenth"] == 1

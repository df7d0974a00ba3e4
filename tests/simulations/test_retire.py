"""Scenario ``retire``: as members come and go, a long-lived member's summary stays
within 24 bytes per live member plus a constant, where without retirement it grows
with every member that ever wrote (bytes counted, no timing; issue 17)."""

from __future__ import annotations

from memmesh.simulations import SimOptions, run_scenario
from memmesh.simulations.retire import SUMMARY_CONSTANT


def test_a_summary_stays_bounded_while_members_come_and_go() -> None:
    report = run_scenario("retire", SimOptions(nodes=3, seed=1, writes=110))
    assert report["converged"] is True, report["violations"]
    assert all(report["invariants"].values()), report["violations"]
    retire = report["retire"]
    assert retire["members_ever"] == 113 and retire["members_at_end"] == 3
    assert retire["full_members"] == 100 and retire["contributors"] == 10
    assert retire["contributed_memories_everywhere"] is True
    assert retire["table_entries"] == 110
    assert retire["summary_bytes"] <= 24 * 3 + SUMMARY_CONSTANT
    assert retire["summary_bytes_without_retirement"] >= retire["summary_bytes"] + 110 * 15
    assert retire["retired_entries_shipped"] > 0

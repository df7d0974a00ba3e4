"""The examples of docs/guide.md's section "Subscriptions" run as doctests against a
fresh replica, so the guide cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from guide_doctests import run_guide_section
from storage_helpers import ticking

from memmesh.storage import Replica


def test_the_guides_subscriptions_section_runs_as_written(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as replica:
        run_guide_section("## Subscriptions", {"replica": replica}, at_least=8)

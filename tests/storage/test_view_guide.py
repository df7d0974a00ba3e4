"""The examples of docs/guide.md's section "Views, filters and bulk deletes" run as
doctests against a fresh replica and index, so the guide cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from guide_doctests import run_guide_section
from storage_helpers import ticking

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica


def test_the_guides_views_section_runs_as_written(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as replica:
        index = SemanticIndex(replica, HashingEmbedder())
        run_guide_section("## Views, filters and bulk deletes",
                          {"replica": replica, "index": index}, at_least=15)

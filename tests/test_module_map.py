"""docs/architecture.md's "Modules" section lists exactly the modules of the packages
it maps, so the map cannot drift from the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("crdt", "trust", "storage", "merge", "gossip/protocol", "gossip", "semantic",
          "memmesh/integrations", "memmesh")


def _listed(package: str) -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split(f"### `{package}`", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([\w.]+\.py)` \|", section, flags=re.MULTILINE))


@pytest.mark.parametrize("package", MAPPED)
def test_the_module_map_lists_every_module_of_the_package_and_no_other(package: str) -> None:
    present = {p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py"}
    assert _listed(package) == present

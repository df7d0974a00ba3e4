"""The hostile-peer suite (issue 11, deliverable 9): shared fixtures.

The suite reuses the gossip tests' process helpers (``gossip_procs``: the cluster key),
so their folder is importable from here as it is from theirs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gossip"))

from hostile_mesh import MODES


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each case runs against bare replicas and against real trio nodes."""
    return str(request.param)

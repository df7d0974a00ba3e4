"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from replica_helpers import Clock

from memmesh.storage import Replica


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Replica, Replica, Clock]]:
    """Two non-durable replicas sharing one settable clock."""
    clock = Clock()
    with Replica.open(tmp_path / "a", clock=clock, durable=False) as a, \
            Replica.open(tmp_path / "b", clock=clock, durable=False) as b:
        yield a, b, clock

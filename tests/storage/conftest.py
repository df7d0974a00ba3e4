"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import ticking

from memmesh.storage import Replica


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """``opened(name, **options)``: a replica ``name`` under ``tmp_path``, closed after."""
    replicas: list[Replica] = []

    def open_(name: str, **options: Any) -> Replica:
        options.setdefault("clock", ticking())
        r = Replica.open(tmp_path / name, replica_id=name, **options)
        replicas.append(r)
        return r

    yield open_
    for r in replicas:
        r.close()

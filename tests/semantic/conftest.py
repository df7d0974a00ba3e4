"""Fixtures of the semantic tests: the real model is loaded once per test session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from replica_helpers import Clock

from memmesh.semantic import SentenceTransformerEmbedder
from memmesh.storage import Replica


@pytest.fixture(scope="session")
def model_embedder() -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2 on CPU, shared by every `model` test."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_replica(tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Any]]:
    """``open_replica("r1")`` opens a fresh replica sharing the test's clock; all are
    closed at teardown."""
    stack = contextlib.ExitStack()

    def opener(replica_id: str, **options: Any) -> Any:
        options.setdefault("clock", clock)
        options.setdefault("durable", False)
        path = tmp_path / replica_id
        return stack.enter_context(Replica.open(path, replica_id=replica_id, **options))

    with stack:
        yield opener

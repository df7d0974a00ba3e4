"""Fixtures of the semantic tests: the real model is loaded once per test session."""

from __future__ import annotations

import pytest
from memmesh.semantic import SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def model_embedder() -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2 on CPU, shared by every `model` test."""
    return SentenceTransformerEmbedder()

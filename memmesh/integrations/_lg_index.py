"""Semantic search for ``MemmeshStore``: LangGraph's ``IndexConfig`` or a memmesh index.

As LangGraph's ``InMemoryStore`` does, every field path of an item (``fields``, or the
paths given to ``put(..., index=[...])``, with ``[*]`` expanding to one text per element)
is embedded on its own, and an item scores as its best field: max pooling of cosine
similarities. The embedder is a LangChain ``Embeddings`` (from an ``IndexConfig``'s
``embed``, through LangGraph's ``ensure_embeddings``) or a memmesh ``SemanticIndex``'s
cached embedder. Vectors are derived data: each replica computes them from the item
(value and paths, both replicated), and caches them per memory version in process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings
from langgraph.store.base import IndexConfig, ensure_embeddings, get_text_at_path, tokenize_path

from memmesh.crdt import InvalidArgumentError
from memmesh.semantic import SemanticIndex, l2_normalise

__all__ = ["Embed", "FieldVectors", "checked_paths", "field_texts", "index_config_of"]

Vectors = npt.NDArray[np.float32]
#: Runs a coroutine to completion from the store's worker thread (set by ``abatch``).
Bridge = Callable[[Awaitable[list[list[float]]]], list[list[float]]]


def _tokens(path: str) -> str | list[str]:
    return path if path == "$" else tokenize_path(path)


def field_texts(value: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    """The texts an item's ``paths`` select, one per path (``[*]``: one per element),
    in LangGraph's path syntax and with its helpers."""
    texts: list[str] = []
    for path in paths:
        texts.extend(get_text_at_path(value, _tokens(path)))
    return texts


def checked_paths(fields: Any) -> list[str]:
    if fields is None:
        return ["$"]
    if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
        raise InvalidArgumentError("index fields must be a list of non-empty path strings")
    paths = list(fields)
    for path in paths:
        try:
            _tokens(path)
        except (ValueError, IndexError) as exc:
            raise InvalidArgumentError(f"bad index field path {path!r}: {exc}") from exc
    return paths or ["$"]


def index_config_of(config: Mapping[str, Any]) -> tuple[IndexConfig, Embeddings]:
    """Validate a LangGraph ``IndexConfig``: a copy of it and its ``Embeddings``."""
    unknown = set(config) - {"dims", "embed", "fields"}
    if unknown:
        raise InvalidArgumentError(f"unknown IndexConfig keys {sorted(unknown)}")
    dims = config.get("dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise InvalidArgumentError("IndexConfig dims must be a positive int")
    if config.get("embed") is None:
        raise InvalidArgumentError("IndexConfig needs embed (Embeddings, callable or string)")
    try:
        embeddings = ensure_embeddings(config["embed"])
    except (ValueError, ImportError) as exc:
        raise InvalidArgumentError(f"cannot use IndexConfig embed: {exc}") from exc
    copy = IndexConfig(**config)  # type: ignore[typeddict-item]
    copy["fields"] = checked_paths(config.get("fields"))
    return copy, embeddings


def _unit_rows(rows: Any, count: int) -> Vectors:
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the embedder returned no vectors: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != count or not np.isfinite(matrix).all():
        raise InvalidArgumentError(
            f"the embedder returned shape {matrix.shape}, expected {count} finite rows")
    unit: Vectors = l2_normalise(matrix)
    return unit  # zero rows stay zero: cosine 0, as in InMemoryStore


class Embed:
    """Texts to unit vectors, with the store's embedder, in the calling context:
    ``bridge`` set (from ``abatch``) runs LangChain's async methods on the caller's loop,
    so an async-only embed function works; without it the sync methods are used."""

    def __init__(self, source: Embeddings | SemanticIndex, bridge: Bridge | None) -> None:
        self.source = source
        self.bridge = bridge

    def documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        source = self.source
        if isinstance(source, SemanticIndex):
            rows: Vectors = source.embedder.embed(texts)
            return rows
        if self.bridge is not None:
            return _unit_rows(self.bridge(source.aembed_documents(texts)), len(texts))
        return _unit_rows(source.embed_documents(texts), len(texts))

    def query(self, text: str) -> Vectors:
        source = self.source
        if isinstance(source, SemanticIndex):
            vector: Vectors = source.embed_query(text)
            return vector
        if self.bridge is not None:
            row = self.bridge(_as_rows(source.aembed_query(text)))
        else:
            row = [source.embed_query(text)]
        first: Vectors = _unit_rows(row, 1)[0]
        return first


async def _as_rows(vector: Awaitable[list[float]]) -> list[list[float]]:
    return [await vector]


class FieldVectors:
    """Per-memory-version field vectors, computed on demand and cached in process."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Any, Vectors]] = {}  # memory id -> (version, rows)

    def ensure(self, items: Sequence[tuple[str, Any, list[str]]], embed: Embed) -> None:
        """Embed, in one batch, the texts of ``(memory id, version, texts)`` not cached."""
        missing = [(mid, version, texts) for mid, version, texts in items
                   if (cached := self._cache.get(mid)) is None or cached[0] != version]
        flat = [text for _, _, texts in missing for text in texts]
        rows = embed.documents(flat)
        start = 0
        for mid, version, texts in missing:
            self._cache[mid] = (version, rows[start: start + len(texts)])
            start += len(texts)

    def best(self, memory_id: str, query: Vectors) -> float | None:
        """The item's best field cosine for the unit ``query``; None if it has no text."""
        cached = self._cache.get(memory_id)
        if cached is None or cached[1].shape[0] == 0:
            return None
        return float((cached[1] @ query).max())

    def forget(self, keep: set[str]) -> None:
        """Drop the vectors of memories no longer in the store."""
        for mid in [m for m in self._cache if m not in keep]:
            del self._cache[mid]

"""Semantic search for ``MemmeshStore``: LangGraph's ``IndexConfig`` or a memmesh index.

As LangGraph's ``InMemoryStore`` does, every field path of an item (``fields``, or the
paths given to ``put(..., index=[...])``, with ``[*]`` expanding to one text per element)
is embedded on its own, and an item scores as its best field: max pooling of the
similarities. The similarity is the config's ``distance_type`` as the pgvector store scores
it (``"cosine"``: cosine; ``"inner_product"``: dot product; ``"l2"``: minus the Euclidean
distance); the SQL stores' own config keys (``text_fields``, SQLite's name for ``fields``;
``ann_index_config``, an ANN index the exact search here does not need) are accepted, so
a config written for them works unchanged. The embedder is a LangChain ``Embeddings``
(from an ``IndexConfig``'s ``embed``, through LangGraph's ``ensure_embeddings``) or a
memmesh ``SemanticIndex``'s cached embedder. Vectors are derived data: each replica
computes them from the item (value and paths, both replicated), and caches them per memory
version in process.
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

__all__ = ["DISTANCES", "Embed", "FieldVectors", "checked_paths", "default_fields", "field_texts",
           "index_config_of", "similarities"]

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


#: ``IndexConfig`` keys: LangGraph's own, then those of its SQLite and Postgres stores.
CONFIG_KEYS = frozenset({"dims", "embed", "fields", "text_fields", "distance_type",
                         "ann_index_config"})
DISTANCES = ("cosine", "inner_product", "l2")


def index_config_of(config: Mapping[str, Any]) -> tuple[IndexConfig, Embeddings]:
    """Validate a LangGraph ``IndexConfig``: a copy of it and its ``Embeddings``."""
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        raise InvalidArgumentError(f"unknown IndexConfig keys {sorted(unknown)}")
    if config.get("distance_type", "cosine") not in DISTANCES:
        raise InvalidArgumentError(f"IndexConfig distance_type must be one of {DISTANCES}")
    dims = config.get("dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise InvalidArgumentError("IndexConfig dims must be a positive int")
    embed = config.get("embed")
    if embed is None:
        raise InvalidArgumentError("IndexConfig needs embed (Embeddings, callable or string)")
    if not (isinstance(embed, str | Embeddings) or callable(embed)):
        raise InvalidArgumentError("IndexConfig embed must be Embeddings, a callable or a "
                                   f'"provider:model" string, not {type(embed).__name__}')
    embeddings = resolve(embed) if isinstance(embed, str) else ensure_embeddings(embed)
    copy = IndexConfig(**config)  # type: ignore[typeddict-item]
    copy["fields"] = checked_paths(default_fields(config))
    return copy, embeddings


def resolve(model: str) -> Embeddings:
    """A ``"provider:model"`` string's ``Embeddings``, from langchain's
    ``init_embeddings`` (the provider's package must be installed)."""
    try:
        from langchain.embeddings import init_embeddings
    except ImportError as exc:
        raise InvalidArgumentError(
            f"IndexConfig embed {model!r} is a provider string: resolving it needs langchain "
            "(pip install langchain and the provider's package), or pass Embeddings or a "
            "function") from exc
    try:
        embeddings = init_embeddings(model)
    except (ValueError, ImportError) as exc:
        raise InvalidArgumentError(f"cannot resolve IndexConfig embed {model!r}: {exc}") from exc
    if not isinstance(embeddings, Embeddings):
        raise InvalidArgumentError(f"init_embeddings({model!r}) returned no Embeddings")
    return embeddings


def default_fields(config: Mapping[str, Any]) -> Any:
    """The config's item paths: ``fields``, else SQLite's ``text_fields`` (a list or one
    path), else None (the whole value)."""
    fields = config.get("fields")
    if fields is None:
        fields = config.get("text_fields")
        if isinstance(fields, str):
            fields = [fields]
    return fields


def _rows(rows: Any, count: int) -> Vectors:
    """The embedder's output as a checked float32 matrix (not normalised: the distance
    decides whether the norm matters)."""
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the embedder returned no vectors: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != count or not np.isfinite(matrix).all():
        raise InvalidArgumentError(
            f"the embedder returned shape {matrix.shape}, expected {count} finite rows")
    return matrix


class Embed:
    """Texts to vectors, with the store's embedder, in the calling context:
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
            return _rows(self.bridge(source.aembed_documents(texts)), len(texts))
        return _rows(source.embed_documents(texts), len(texts))

    def query(self, text: str) -> Vectors:
        source = self.source
        if isinstance(source, SemanticIndex):
            vector: Vectors = source.embed_query(text)
            return vector
        if self.bridge is not None:
            row = self.bridge(_as_rows(source.aembed_query(text)))
        else:
            row = [source.embed_query(text)]
        first: Vectors = _rows(row, 1)[0]
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

    def best(self, memory_id: str, query: Vectors, distance: str = "cosine") -> float | None:
        """The item's best field similarity to ``query`` under ``distance`` (one of
        :data:`DISTANCES`); None if it has no text."""
        cached = self._cache.get(memory_id)
        if cached is None or cached[1].shape[0] == 0:
            return None
        return float(similarities(cached[1], query, distance).max())

    def forget(self, keep: set[str]) -> None:
        """Drop the vectors of memories no longer in the store."""
        for mid in [m for m in self._cache if m not in keep]:
            del self._cache[mid]


def similarities(rows: Vectors, query: Vectors, distance: str) -> Vectors:
    """Each row's similarity to ``query`` as pgvector's store scores it: cosine (0 for a
    zero vector, as in ``InMemoryStore``), dot product, or minus the Euclidean distance."""
    if distance == "inner_product":
        dots: Vectors = rows @ query
        return dots
    if distance == "l2":
        negative: Vectors = -np.linalg.norm(rows - query, axis=1)
        return negative
    cosines: Vectors = l2_normalise(rows) @ l2_normalise(query[None, :])[0]
    return cosines

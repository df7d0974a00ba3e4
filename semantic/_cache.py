"""Embedding cache keyed by content hash, kept in the replica's local aux store.

A text is embedded at most once per model: vectors are stored under
``sha256(utf-8 text)`` in the aux namespace ``emb/<embedder name>`` (local, never
replicated), so a restarted process rebuilds its index from the cache without running
the model, and a text that arrives from ten peers is embedded once. :meth:`forget`
drops the vectors of texts that left the replica (a forgotten memory's); an index over a
replica encrypted at rest passes no store, so vectors stay in memory only
(docs/security.md, "Encryption at rest and erasure").
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ._embedding import Embedder, FloatMatrix, check_embeddings


class AuxStore(Protocol):
    """The slice of :class:`memmesh.storage.Replica` the cache needs."""

    def aux_get(self, namespace: str, key: bytes) -> bytes | None: ...

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None: ...


def content_key(text: str) -> bytes:
    """The cache key of ``text``: its SHA-256 digest."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class CachedEmbedder:
    """Wraps an :class:`Embedder`; looks texts up in ``store`` before embedding them.

    ``store`` may be None (no persistence; duplicates within a batch are still embedded
    once). ``embedded`` counts the texts actually sent to the model, for tests and stats.
    """

    def __init__(self, embedder: Embedder, store: AuxStore | None) -> None:
        self.embedder = embedder
        self.store = store
        self.namespace = f"emb/{embedder.name}"
        self.dimension: int | None = None
        self.embedded = 0

    @property
    def name(self) -> str:
        return self.embedder.name

    def _lookup(self, key: bytes) -> np.ndarray | None:
        if self.store is None:
            return None
        raw = self.store.aux_get(self.namespace, key)
        if raw is None or len(raw) % 4 or not raw:
            return None
        vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if self.dimension is not None and vector.shape[0] != self.dimension:
            return None
        return vector

    def forget(self, keys: Sequence[bytes]) -> None:
        """Drop the cached vectors under ``keys`` (content keys) from the store."""
        delete = getattr(self.store, "aux_delete", None)
        if not keys or not callable(delete):
            return
        batch = getattr(self.store, "batch", None)
        with batch() if callable(batch) else contextlib.nullcontext():
            for key in set(keys):
                delete(self.namespace, key)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``, running the model only on texts never seen before."""
        keys = [content_key(text) for text in texts]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in found or key in missing:
                continue
            vector = self._lookup(key)
            if vector is None:
                missing[key] = text
            else:
                found[key] = vector
        if missing:
            fresh = check_embeddings(self.embedder.embed(list(missing.values())), len(missing))
            self.embedded += len(missing)
            self.dimension = int(fresh.shape[1])
            for key, vector in zip(missing, fresh, strict=True):
                found[key] = vector
            if self.store is not None:
                batch = getattr(self.store, "batch", None)  # one transaction for the lot
                with batch() if callable(batch) else contextlib.nullcontext():
                    for key in missing:
                        self.store.aux_put(self.namespace, key, found[key].astype("<f4").tobytes())
        if not keys:
            dim = self.dimension or 0
            return np.zeros((0, dim), dtype=np.float32)
        matrix = np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
        if self.dimension is None:
            self.dimension = int(matrix.shape[1])
        return check_embeddings(matrix, len(keys))

"""The :class:`Embedder` protocol and the checks every embedding passes through.

An embedder maps texts to an ``(n, d)`` float32 matrix whose rows have unit L2 norm,
so cosine similarity is a plain dot product. ``name`` identifies the model (and its
settings) and keys the embedding cache: two embedders with the same name must produce
the same vectors for the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._errors import EmbeddingError

FloatMatrix = npt.NDArray[np.float32]

#: Rows whose norm differs from 1 by more than this are rejected.
NORM_TOLERANCE = 1e-3


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors.

    ``embed(texts)`` returns an array of shape ``(len(texts), dimension)``; an empty
    sequence gives shape ``(0, dimension)``.
    """

    @property
    def name(self) -> str:
        """Stable identifier of the model and its settings (keys the cache)."""
        ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts`` in one batch."""
        ...


def l2_normalise(matrix: npt.ArrayLike) -> FloatMatrix:
    """Return ``matrix`` as float32 with each non-zero row scaled to unit length."""
    array = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def check_embeddings(matrix: object, count: int) -> FloatMatrix:
    """Validate an embedder's output: 2-d, ``count`` rows, finite, unit rows.

    Raises :class:`EmbeddingError` rather than letting a bad vector into the index,
    where it would silently distort every ranking.
    """
    if not isinstance(matrix, np.ndarray):
        raise EmbeddingError(f"embedder returned {type(matrix).__name__}, not a numpy array")
    if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] < 1:
        raise EmbeddingError(f"embedder returned shape {matrix.shape}, expected ({count}, d)")
    array = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise EmbeddingError("embedder returned non-finite values")
    if count:
        norms = np.linalg.norm(array, axis=1)
        if np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
            raise EmbeddingError("embedder returned rows that are not L2-normalised")
    return array

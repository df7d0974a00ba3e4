"""A deterministic, dependency-free embedder for fast tests.

Feature hashing (Weinberger et al., "Feature Hashing for Large Scale Multitask
Learning", ICML 2009): every lower-cased word and word bigram is hashed with BLAKE2b
into one of ``dimension`` buckets with a hashed sign, and the result is L2-normalised.
Texts sharing words get a high cosine; identical texts get exactly 1. It knows nothing
of meaning (synonyms score 0): use it where a test needs speed and determinism, and the
real model where a test is about meaning.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from ._embedding import FloatMatrix, l2_normalise

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_EMPTY_FEATURE = "\x00empty"


class HashingEmbedder:
    """Bag of hashed words and bigrams; deterministic across runs and machines."""

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 8:
            raise ValueError("dimension must be at least 8")
        self.dimension = dimension

    @property
    def name(self) -> str:
        return f"hashing-v1-{self.dimension}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        if not words:
            return [_EMPTY_FEATURE]
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value >> 63 else -1.0
                out[row, value % self.dimension] += sign
        return l2_normalise(out)

"""How a search ranks memories: similarity, recency, confidence and actor trust.

For a query ``q`` and a stored version ``v`` (unit vectors, so cosine = dot product)::

    score = w_sim   * cos(q, v)                              # in [-1, 1]
          + w_rec   * 0.5 ** (age_ms(v) / half_life_ms)      # 1 when new, 1/2 per half-life
          + w_conf  * confidence(v)                          # writer's confidence, in [0, 1]
          + w_trust * trust(actor(v))                        # per-actor weight, in [0, 1]

A sum (not a product) keeps each part readable in ``Hit.parts`` and, with the default
weights, similarity dominant; ``age_ms`` is clamped at 0, so a clock running ahead never
scores above "brand new". Top-k is exact: one ``numpy.partition`` over the in-scope rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """Weights of the score's four parts; every field is documented in the module."""

    similarity: float = 1.0
    recency: float = 0.1
    half_life_ms: float = 7 * DAY_MS
    confidence: float = 0.1
    trust: float = 0.1
    actor_trust: Mapping[str, float] = field(default_factory=dict)
    default_trust: float = 0.5

    def __post_init__(self) -> None:
        for name in ("similarity", "recency", "confidence", "trust", "default_trust"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not np.isfinite(self.half_life_ms) or self.half_life_ms <= 0:
            raise ValueError("half_life_ms must be > 0")
        for actor, value in self.actor_trust.items():
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"trust of {actor!r} must be in [0, 1], got {value!r}")
        if self.default_trust > 1.0:
            raise ValueError("default_trust must be in [0, 1]")
        object.__setattr__(self, "actor_trust", MappingProxyType(dict(self.actor_trust)))

    def trust_of(self, actor: str | None) -> float:
        """Trust weight of ``actor`` (``default_trust`` when unknown or None)."""
        if actor is None:
            return self.default_trust
        return float(self.actor_trust.get(actor, self.default_trust))

    def version_parts(self, confidence: float, actor: str | None) -> tuple[float, float]:
        """The weighted confidence and trust parts of a version's score (query- and
        time-independent)."""
        clamped = min(max(float(confidence), 0.0), 1.0)
        return self.confidence * clamped, self.trust * self.trust_of(actor)

    def prior(self, confidence: float, actor: str | None) -> float:
        """The query-independent part of a version's score: confidence plus trust."""
        confidence_part, trust_part = self.version_parts(confidence, actor)
        return confidence_part + trust_part

    def recency_part(self, timestamp_ms: float, now_ms: float) -> float:
        """The weighted recency part of one version's score (``recency_factor`` of one
        row, times the weight)."""
        if not self.recency:
            return 0.0
        return self.recency * float(2.0 ** (-max(now_ms - timestamp_ms, 0.0) / self.half_life_ms))

    def recency_factor(
        self, timestamps_ms: npt.NDArray[np.float64], now_ms: float
    ) -> npt.NDArray[np.float64]:
        """``0.5 ** (age / half_life)`` per row, with negative ages clamped to 0."""
        ages = np.maximum(now_ms - timestamps_ms, 0.0)
        return np.exp2(-ages / self.half_life_ms)


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """The weighted contributions of one hit's score; they sum to ``Hit.score``."""

    similarity: float
    recency: float
    confidence: float
    trust: float

    @property
    def total(self) -> float:
        return self.similarity + self.recency + self.confidence + self.trust


def score_parts(
    weights: ScoreWeights,
    *,
    cosine: float,
    timestamp_ms: float,
    now_ms: float,
    confidence: float,
    actor: str | None,
) -> ScoreParts:
    """Explain one version's score, part by part (same formula as the vectorised path)."""
    confidence_part, trust_part = weights.version_parts(confidence, actor)
    return ScoreParts(
        similarity=weights.similarity * cosine,
        recency=weights.recency_part(timestamp_ms, now_ms),
        confidence=confidence_part,
        trust=trust_part,
    )


def top_k(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` largest scores, best first (exact; ties by lower index).

    A strided sample of about ``sqrt(k n)`` scores gives a floor ``t``: its k-th largest
    value, so at least k scores reach ``t`` and every top-k score does. One pass keeps
    the indices scoring at least ``t`` (about ``sqrt(k n)`` of them on any ordering of
    the rows that is not adversarial to the stride), and the exact selection runs on
    those alone; where the floor keeps too many (a mostly ruled-out score vector) the
    selection runs on every score. No index array over all rows, no negated copy.
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.intp)
    stride = n // max(int(math.sqrt(k * n)), 1)
    if stride >= 2 and n // stride > k:
        sample = scores[::stride].copy()
        sample.partition(sample.shape[0] - k)
        candidates = (scores >= sample[sample.shape[0] - k]).nonzero()[0]
        if k <= candidates.size <= n // 2:
            # a stable sort keeps equal scores in index order: lower index first
            order = (-scores[candidates]).argsort(kind="stable")[:k]
            best: npt.NDArray[np.intp] = candidates[order]
            return best
    return _select(scores, k)


def _select(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """:func:`top_k` by one ``partition`` of the values: the k-th largest value ``t``,
    then every index above ``t`` and the lowest-indexed ones equal to it."""
    n = scores.shape[0]
    if k >= n:
        candidates = np.arange(n)
    else:
        kth = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth)
        if candidates.size > k:  # ties at the k-th value: the lowest indices among them
            values = scores[candidates]
            above = candidates[values > kth]
            ties = candidates[values == kth][: k - above.size]
            candidates = np.concatenate([above, ties])
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order].astype(np.intp, copy=False)

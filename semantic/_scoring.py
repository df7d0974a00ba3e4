"""How a search ranks memories: similarity, recency, confidence and actor trust.

For a query ``q`` and a stored version ``v`` (unit vectors, so cosine = dot product)::

    score = w_sim   * cos(q, v)                              # in [-1, 1]
          + w_rec   * 0.5 ** (age_ms(v) / half_life_ms)      # 1 when new, 1/2 per half-life
          + w_conf  * confidence(v)                          # writer's confidence, in [0, 1]
          + w_trust * trust(actor(v))                        # per-actor weight, in [0, 1]

A sum (not a product) keeps each part readable in ``Hit.parts`` and, with the default
weights, similarity dominant; ``age_ms`` is clamped at 0, so a clock running ahead never
scores above "brand new". Top-k is exact: ``numpy.argpartition`` over the in-scope rows.
"""

from __future__ import annotations

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

    def prior(self, confidence: float, actor: str | None) -> float:
        """The query-independent part of a version's score: confidence plus trust."""
        clamped = min(max(float(confidence), 0.0), 1.0)
        return self.confidence * clamped + self.trust * self.trust_of(actor)

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
    recency = 2.0 ** (-max(now_ms - timestamp_ms, 0.0) / weights.half_life_ms)
    clamped = min(max(float(confidence), 0.0), 1.0)
    return ScoreParts(
        similarity=weights.similarity * cosine,
        recency=weights.recency * recency,
        confidence=weights.confidence * clamped,
        trust=weights.trust * weights.trust_of(actor),
    )


def top_k(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` largest scores, best first (exact; ties by lower index).

    One ``argpartition`` finds the k-th largest value ``t`` (no negated copy of the
    scores); every index above ``t`` and the lowest-indexed ones equal to it make the k.
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.intp)
    if k >= n:
        candidates = np.arange(n)
    else:
        kth = scores[np.argpartition(scores, n - k)[n - k]]
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)[: k - above.size]
        candidates = np.concatenate([above, ties])
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order].astype(np.intp, copy=False)

"""The ranking formula and the exact top-k selection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.semantic import ScoreWeights
from memmesh.semantic._scoring import DAY_MS, score_parts, top_k


def test_recency_halves_every_half_life_and_never_exceeds_one() -> None:
    weights = ScoreWeights(half_life_ms=DAY_MS)
    now = 10 * DAY_MS
    stamps = np.array([now, now - DAY_MS, now - 2 * DAY_MS, now + 5.0])
    factors = weights.recency_factor(stamps, now)
    np.testing.assert_allclose(factors, [1.0, 0.5, 0.25, 1.0])


def test_unknown_actors_get_the_default_trust() -> None:
    weights = ScoreWeights(actor_trust={"lead": 1.0, "intern": 0.1}, default_trust=0.4)
    assert weights.trust_of("lead") == 1.0
    assert weights.trust_of("intern") == 0.1
    assert weights.trust_of("stranger") == weights.trust_of(None) == 0.4


def test_score_parts_sum_to_the_score_and_follow_the_weights() -> None:
    weights = ScoreWeights(
        similarity=2.0, recency=0.5, confidence=0.25, trust=0.125, actor_trust={"bob": 0.8}
    )
    parts = score_parts(
        weights, cosine=0.5, timestamp_ms=0, now_ms=weights.half_life_ms, confidence=0.4,
        actor="bob",
    )
    assert parts.similarity == pytest.approx(1.0)
    assert parts.recency == pytest.approx(0.25)
    assert parts.confidence == pytest.approx(0.1)
    assert parts.trust == pytest.approx(0.1)
    assert parts.total == pytest.approx(1.45)


@pytest.mark.parametrize(
    "bad",
    [
        {"similarity": -1.0},
        {"recency": float("nan")},
        {"half_life_ms": 0},
        {"actor_trust": {"x": 1.5}},
        {"default_trust": 2.0},
    ],
)
def test_invalid_weights_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ScoreWeights(**bad)  # type: ignore[arg-type]


def test_weights_are_immutable_even_through_the_trust_mapping() -> None:
    trust = {"a": 0.5}
    weights = ScoreWeights(actor_trust=trust)
    trust["a"] = 1.0
    assert weights.trust_of("a") == 0.5
    with pytest.raises(TypeError):
        weights.actor_trust["a"] = 0.9  # type: ignore[index]


@settings(max_examples=60)
@given(
    st.lists(st.integers(-5, 5), min_size=0, max_size=40),
    st.integers(1, 50),
)
def test_top_k_matches_a_full_sort(values: list[int], k: int) -> None:
    scores = np.array(values, dtype=np.float64)
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    assert top_k(scores, k).tolist() == expected


@settings(max_examples=40)
@given(
    st.integers(1_000, 30_000),
    st.integers(1, 60),
    st.sampled_from(["ties", "spread", "mostly ruled out", "sorted"]),
    st.integers(0, 2**32 - 1),
)
def test_top_k_of_many_rows_matches_a_full_sort(n: int, k: int, shape: str, seed: int) -> None:
    # many rows take the sampled floor; ties, -inf masses and sorted rows stress it
    rng = np.random.default_rng(seed)
    if shape == "ties":
        scores = rng.integers(-3, 4, n).astype(np.float32)
    elif shape == "spread":
        scores = rng.standard_normal(n).astype(np.float32)
    elif shape == "sorted":
        scores = np.sort(rng.standard_normal(n).astype(np.float32))
    else:
        scores = np.full(n, -np.inf, dtype=np.float32)
        live = rng.choice(n, size=int(rng.integers(0, 3 * k)), replace=False)
        scores[live] = rng.integers(-2, 3, live.size)
    expected = np.lexsort((np.arange(n), -scores))[:k]
    assert top_k(scores, k).tolist() == expected.tolist()

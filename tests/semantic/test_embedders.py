"""Embedders: unit-norm float32 output, determinism, cache, missing-extra error."""

from __future__ import annotations

import builtins
import sys
from typing import Any

import numpy as np
import pytest

from memmesh.crdt import MemmeshError
from memmesh.semantic import (
    CachedEmbedder,
    Embedder,
    EmbeddingError,
    HashingEmbedder,
    MissingDependencyError,
    SentenceTransformerEmbedder,
    content_key,
)
from memmesh.semantic import _sentence_transformer as st_module


class DictStore:
    """An in-memory aux store with the replica's aux_get/aux_put signature."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, bytes], bytes] = {}

    def aux_get(self, namespace: str, key: bytes) -> bytes | None:
        return self.data.get((namespace, key))

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None:
        self.data[(namespace, key)] = value


class CountingEmbedder:
    def __init__(self) -> None:
        self.inner = HashingEmbedder(64)
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return "counting"

    def embed(self, texts: Any) -> Any:
        self.calls.append(list(texts))
        return self.inner.embed(texts)


def test_hashing_embedder_is_unit_norm_float32_and_deterministic() -> None:
    texts = ["The cat sat on the mat", "", "日本語のテキスト", "cat"]
    first = HashingEmbedder().embed(texts)
    assert first.dtype == np.float32 and first.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(first, HashingEmbedder().embed(texts))


def test_hashing_embedder_scores_shared_words_above_unrelated_text() -> None:
    a, b, c = HashingEmbedder().embed(
        ["the deploy runs on friday", "the deploy runs on friday evening", "buy oat milk"]
    )
    assert float(a @ b) > 0.7 > float(a @ c)


def test_hashing_embedder_satisfies_the_protocol_and_handles_empty_batches() -> None:
    embedder = HashingEmbedder(32)
    assert isinstance(embedder, Embedder)
    assert embedder.embed([]).shape == (0, 32)


def test_cache_embeds_each_text_once_across_batches_and_restarts() -> None:
    store = DictStore()
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, store)
    first = cached.embed(["a b", "c d", "a b"])
    assert inner.calls == [["a b", "c d"]]
    assert ((f"emb/{inner.name}", content_key("a b")) in store.data)
    second = cached.embed(["c d", "e f"])
    assert inner.calls[-1] == ["e f"]
    np.testing.assert_array_equal(first[1], second[0])
    restarted_inner = CountingEmbedder()
    again = CachedEmbedder(restarted_inner, store).embed(["a b", "c d", "e f"])
    assert restarted_inner.calls == []
    np.testing.assert_array_equal(again[:2], first[:2])


def test_cache_rejects_an_embedder_that_returns_unnormalised_rows() -> None:
    class Bad:
        name = "bad"

        def embed(self, texts: Any) -> Any:
            return np.ones((len(texts), 4), dtype=np.float32)

    with pytest.raises(EmbeddingError) as caught:
        CachedEmbedder(Bad(), DictStore()).embed(["x"])
    assert isinstance(caught.value, MemmeshError)


def test_missing_sentence_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sentence_transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(st_module, "_MODELS", {})
    monkeypatch.delitem(sys.modules, "sentence_transformers", raising=False)
    with pytest.raises(MissingDependencyError, match=r"memmesh\[semantic\]"):
        SentenceTransformerEmbedder()


@pytest.mark.model
def test_real_model_embeds_meaning_offline(model_embedder: SentenceTransformerEmbedder) -> None:
    vectors = model_embedder.embed(
        ["The meeting moved to Thursday.", "We now meet on Thursday.", "Bananas are yellow."]
    )
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3
    assert model_embedder.name == "st:all-MiniLM-L6-v2"


@pytest.mark.model
def test_real_model_batches_match_single_embeddings(
    model_embedder: SentenceTransformerEmbedder,
) -> None:
    texts = [f"memory number {i} about topic {i % 7}" for i in range(70)]
    batched = model_embedder.embed(texts)
    single = np.vstack([model_embedder.embed([t]) for t in texts[:3]])
    np.testing.assert_allclose(batched[:3], single, atol=1e-5)


@pytest.mark.model
def test_the_model_is_loaded_once_per_process_and_device(
    model_embedder: SentenceTransformerEmbedder,
) -> None:
    again = SentenceTransformerEmbedder(device="cpu", batch_size=8)
    assert again.model is model_embedder.model
    assert again.batch_size == 8 and again.dimension == 384

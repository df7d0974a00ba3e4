"""``MemmeshStore`` takes LangGraph's ``IndexConfig`` and searches as ``InMemoryStore`` does.

Scores are compared with LangGraph's own ``InMemoryStore`` given the same configuration
(the reference), using a deterministic hashing embedder that records what it embeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.memory import InMemoryStore
from replica_helpers import sync

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.integrations.langgraph import MemmeshStore
from memmesh.semantic import HashingEmbedder, SemanticIndex

EMBEDDER = HashingEmbedder()
DIMS = EMBEDDER.dimension


class Recorder:
    """A sync embed function that refuses empty texts and remembers what it embedded."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        assert all(texts), "asked to embed an empty text"
        self.texts.extend(texts)
        return [row.tolist() for row in EMBEDDER.embed(list(texts))]


class HashEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over the hashing embedder."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [row.tolist() for row in EMBEDDER.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]



ITEMS = {
    "pets": {"text": "my cat sleeps on the sofa", "tags": ["animals", "home"]},
    "food": {"text": "vegetarian pasta recipes", "tags": ["cooking", "dinner"]},
    "code": {"text": "python asyncio event loop", "tags": ["programming"]},
}


def _scores(store: Any, query: str) -> dict[str, float | None]:
    return {hit.key: hit.score for hit in store.search(("docs",), query=query)}


def _fill(store: Any, **put: Any) -> None:
    for key, value in ITEMS.items():
        store.put(("docs",), key, value, **put)


@pytest.mark.parametrize("fields", [None, ["text"], ["text", "tags[*]"], ["tags[0]"]])
def test_index_config_scores_equal_in_memory_store_best_field_cosine(
        pair: Any, fields: list[str] | None) -> None:
    config: dict[str, Any] = {"dims": DIMS, "embed": Recorder()}
    if fields is not None:
        config["fields"] = fields
    reference, store = InMemoryStore(index=dict(config)), MemmeshStore(pair[0], index=config)
    for s in (reference, store):
        _fill(s)
    for query in ("a sleepy cat", "cooking dinner", "programming"):
        expected, got = _scores(reference, query), _scores(store, query)
        assert got == pytest.approx(expected, abs=1e-5)
        scores = [v for v in got.values() if v is not None]
        assert scores == sorted(scores, reverse=True)  # best first (ties in any order)
    assert store.index_config is not None
    assert store.index_config["fields"] == (fields or ["$"]) and store.index_config["dims"] == DIMS


def test_each_field_path_is_embedded_on_its_own(pair: Any) -> None:
    embed = Recorder()
    store = MemmeshStore(pair[0], index={"dims": DIMS, "embed": embed,
                                             "fields": ["text", "tags[*]"]})
    store.put(("docs",), "food", ITEMS["food"])
    assert embed.texts == ["vegetarian pasta recipes", "cooking", "dinner"]


def test_embed_may_be_langchain_embeddings_or_an_async_function(pair: Any) -> None:
    async def aembed(texts: Sequence[str]) -> list[list[float]]:
        return [row.tolist() for row in EMBEDDER.embed(list(texts))]

    a, b, _ = pair
    sync_store = MemmeshStore(a, index={"dims": DIMS, "embed": HashEmbeddings(),
                                        "fields": ["text"]})
    async_store = MemmeshStore(b, index={"dims": DIMS, "embed": aembed, "fields": ["text"]})
    _fill(sync_store)

    async def run() -> dict[str, float | None]:
        for key, value in ITEMS.items():
            await async_store.aput(("docs",), key, value)
        hits = await async_store.asearch(("docs",), query="a sleepy cat")
        return {hit.key: hit.score for hit in hits}

    got = asyncio.run(run())
    assert got == pytest.approx(_scores(sync_store, "a sleepy cat"))
    assert next(iter(got)) == "pets"


@pytest.mark.parametrize("index", [
    {"dims": DIMS, "embed": "nosuchprovider:model"},   # a string langchain cannot resolve
    {"dims": DIMS},                                    # no embed
    {"dims": 0, "embed": Recorder()},
    {"dims": DIMS, "embed": Recorder(), "fields": "text"},
    {"dims": DIMS, "embed": Recorder(), "unknown": 1},
    {"dims": DIMS, "embed": Recorder(), "distance_type": "hamming"},
    "text",
])
def test_a_bad_index_config_is_refused_with_a_typed_error(pair: Any, index: Any) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        MemmeshStore(pair[0], index=index)
    assert isinstance(info.value, MemmeshError)


def test_a_provider_string_embed_is_resolved_by_langchain_init_embeddings(
        pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain.embeddings

    asked: list[str] = []

    def init_embeddings(model: str) -> Embeddings:
        asked.append(model)
        if model != "hashing:words":
            raise ValueError(f"unknown provider in {model!r}")
        return HashEmbeddings()

    monkeypatch.setattr(langchain.embeddings, "init_embeddings", init_embeddings)
    store = MemmeshStore(pair[0], index={"dims": DIMS, "embed": "hashing:words",
                                         "fields": ["text"]})
    reference = MemmeshStore(pair[1], index={"dims": DIMS, "embed": HashEmbeddings(),
                                             "fields": ["text"]})
    for s in (store, reference):
        _fill(s)
    assert _scores(store, "a sleepy cat") == pytest.approx(_scores(reference, "a sleepy cat"))
    assert store.index_config is not None and store.index_config["embed"] == "hashing:words"
    with pytest.raises(InvalidArgumentError, match="unknown provider"):
        MemmeshStore(pair[0], index={"dims": DIMS, "embed": "other:model"})
    assert asked == ["hashing:words", "other:model"]


FIXED = {"doc": [3.0, 4.0], "other": [0.0, 1.0], "query": [1.0, 0.0]}


class Fixed(Embeddings):
    """Unnormalised vectors picked by text (``FIXED``), to tell the distances apart."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [FIXED[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return FIXED[text]


@pytest.mark.parametrize(("distance", "expected"), [
    (None, 0.6),                          # cosine, the default
    ("cosine", 0.6),
    ("inner_product", 3.0),               # the dot product of the raw vectors
    ("l2", -(20.0 ** 0.5)),               # minus the Euclidean distance
])
def test_distance_type_scores_as_the_postgres_store_does(
        pair: Any, distance: str | None, expected: float) -> None:
    config: dict[str, Any] = {"dims": 2, "embed": Fixed(), "fields": ["a", "b"],
                              "ann_index_config": {"vector_type": "halfvec"}}
    if distance is not None:
        config["distance_type"] = distance
    store = MemmeshStore(pair[0], index=config)
    store.put(("docs",), "k", {"a": "doc", "b": "other"})
    [hit] = store.search(("docs",), query="query")
    best_other = {None: 0.0, "cosine": 0.0, "inner_product": 0.0, "l2": -(2.0 ** 0.5)}
    assert hit.score == pytest.approx(max(expected, best_other[distance]), abs=1e-6)


def test_sqlite_store_text_fields_name_the_embedded_paths(pair: Any) -> None:
    embed = Recorder()
    store = MemmeshStore(pair[0], index={"dims": DIMS, "embed": embed, "text_fields": ["text"],
                                         "distance_type": "cosine"})
    store.put(("docs",), "food", ITEMS["food"])
    assert embed.texts == ["vegetarian pasta recipes"]
    assert store.index_config is not None and store.index_config["fields"] == ["text"]
    one = MemmeshStore(pair[1], index={"dims": DIMS, "embed": Recorder(), "text_fields": "text"})
    assert one.index_config is not None and one.index_config["fields"] == ["text"]


def test_index_false_items_are_never_embedded(pair: Any) -> None:
    embed = Recorder()  # refuses empty texts, as LangGraph embedders may
    store = MemmeshStore(pair[0], index={"dims": DIMS, "embed": embed, "fields": ["text"]})
    store.put(("docs",), "hidden", {"text": "secret cat plans"}, index=False)
    store.put(("docs",), "pets", ITEMS["pets"])
    hits = store.search(("docs",), query="cat")
    assert [(h.key, h.score is None) for h in hits] == [("pets", False), ("hidden", True)]
    assert "secret cat plans" not in embed.texts


def test_per_item_fields_survive_ttl_refresh_and_replication(pair: Any) -> None:
    a, b, clock = pair
    config = {"dims": DIMS, "embed": Recorder(), "fields": ["text"]}
    store_a, store_b = MemmeshStore(a, index=config), MemmeshStore(b, index=config)
    value = {"text": "quarterly tax report", "note": "my cat sleeps on the sofa"}
    store_a.put(("docs",), "k", value, index=["note"], ttl=10)
    own = store_a.search(("docs",), query="my cat sleeps on the sofa")[0].score
    assert own == pytest.approx(1.0, abs=1e-5)  # the note was embedded, not the text
    clock.advance(5 * 60_000)
    assert store_a.get(("docs",), "k", refresh_ttl=True) is not None  # a refreshing write
    sync(a, b)
    for store in (store_a, store_b):
        hit = store.search(("docs",), query="my cat sleeps on the sofa")[0]
        assert hit.key == "k" and hit.score == pytest.approx(own, abs=1e-5)


def test_rank_score_is_memmesh_blend_and_similarity_is_the_default(pair: Any) -> None:
    a, b, _ = pair
    config = {"dims": DIMS, "embed": Recorder(), "fields": ["text"]}
    plain, ranked = MemmeshStore(a, index=config), MemmeshStore(b, index=config, score="rank")
    _fill(plain)
    _fill(ranked)
    cosine, blended = _scores(plain, "a sleepy cat"), _scores(ranked, "a sleepy cat")
    assert set(cosine) == set(blended)
    assert all(blended[k] > cosine[k] for k in cosine)  # recency, confidence, trust added
    with pytest.raises(InvalidArgumentError):
        MemmeshStore(a, index=config, score="blend")  # type: ignore[arg-type]


def test_semantic_index_search_scores_by_best_field_cosine(pair: Any) -> None:
    a = pair[0]
    store = MemmeshStore(a, index=SemanticIndex(a, HashingEmbedder()), fields=["text", "tags[*]"])
    reference = InMemoryStore(index={"dims": DIMS, "embed": Recorder(),
                                     "fields": ["text", "tags[*]"]})
    for s in (store, reference):
        _fill(s)
    assert store.index_config is None
    assert _scores(store, "dinner") == pytest.approx(_scores(reference, "dinner"), abs=1e-5)

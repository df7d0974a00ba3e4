"""Conflict, Resolution and every deterministic built-in resolver, plus chain()."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from semantic_helpers import conflict, version

from memmesh.crdt import MemmeshError
from memmesh.merge import Conflict, InvalidResolutionError, Resolution, format_alternatives
from memmesh.semantic import (
    HashingEmbedder,
    HighestConfidence,
    KeepAll,
    LastWriterWins,
    NearDuplicate,
    RolePriority,
    SentenceTransformerEmbedder,
    chain,
)


def test_pick_keeps_the_text_and_confidence_of_the_version() -> None:
    v = version("use postgres", confidence=0.7)
    resolution = Resolution.pick(v)
    assert (resolution.kind, resolution.text, resolution.picked, resolution.confidence) == (
        "pick", "use postgres", v, 0.7,
    )


def test_keep_all_preserves_every_alternative_with_uncertainty_markers() -> None:
    a = version("deploy on friday", actor="alice", role="lead", replica="r1")
    b = version("deploy on monday", actor="bob", replica="r2")
    resolution = Resolution.keep_all(conflict(a, b))
    assert resolution.kind == "keep_all"
    assert resolution.text.startswith("[UNCERTAIN: 2 conflicting versions")
    assert "(possibly) deploy on friday [alice (lead, 1970-01-01T00:00:01Z)]" in resolution.text
    assert "(possibly) deploy on monday [bob (" in resolution.text
    assert Resolution.keep_all(a, [b]).text == resolution.text


def test_keep_all_of_identical_texts_is_that_text() -> None:
    assert format_alternatives([version("x"), version("x", replica="r2")]) == "x"


@pytest.mark.parametrize("text", ["", "   ", "x" * 70_000])
def test_merged_rejects_empty_or_huge_text(text: str) -> None:
    with pytest.raises(InvalidResolutionError) as caught:
        Resolution.merged(text)
    assert isinstance(caught.value, MemmeshError)


def test_last_writer_wins_picks_the_greatest_timestamp() -> None:
    old = version("old", wall_ms=1_000, replica="r1")
    new = version("new", wall_ms=2_000, replica="r2")
    resolution = LastWriterWins()(conflict(new, old))
    assert resolution is not None and resolution.picked == new
    assert resolution.resolver == "last-writer-wins"


def test_role_priority_picks_the_highest_role_from_a_sequence_or_a_mapping() -> None:
    worker = version("worker says", role="worker", replica="r1", wall_ms=9_000)
    lead = version("lead says", role="lead", replica="r2", wall_ms=1_000)
    nobody = version("no role", role=None, replica="r3", wall_ms=9_999)
    for ranks in (["lead", "worker"], {"lead": 10, "worker": 1}):
        resolution = RolePriority(ranks)(conflict(worker, lead, nobody))
        assert resolution is not None and resolution.picked == lead


def test_role_priority_tie_between_different_texts_is_no_opinion() -> None:
    a = version("a", role="worker", replica="r1")
    b = version("b", role="worker", replica="r2")
    assert RolePriority(["lead", "worker"])(conflict(a, b)) is None


def test_role_priority_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        RolePriority("lead")


def test_highest_confidence_picks_the_most_confident_or_abstains_on_a_tie() -> None:
    sure = version("sure", confidence=0.9, replica="r1")
    unsure = version("unsure", confidence=0.2, replica="r2")
    resolution = HighestConfidence()(conflict(sure, unsure))
    assert resolution is not None and resolution.picked == sure
    tie = version("other", confidence=0.9, replica="r3")
    assert HighestConfidence()(conflict(sure, tie)) is None


def test_near_duplicate_keeps_the_newest_wording_when_all_versions_agree() -> None:
    a = version("the deploy window is friday at 5pm", replica="r1", wall_ms=1_000)
    b = version("the deploy window is friday at 5pm sharp", replica="r2", wall_ms=2_000)
    resolution = NearDuplicate(0.8, embedder=HashingEmbedder())(conflict(a, b))
    assert resolution is not None and resolution.picked == b


def test_near_duplicate_abstains_when_versions_differ() -> None:
    a = version("the deploy window is friday", replica="r1")
    b = version("buy oat milk on the way home", replica="r2")
    assert NearDuplicate(0.8, embedder=HashingEmbedder())(conflict(a, b)) is None


def test_near_duplicate_needs_no_model_for_case_and_space_variants() -> None:
    class Exploding:
        name = "exploding"

        def embed(self, texts: object) -> object:
            raise AssertionError("must not embed")

    a = version("Tea, not coffee", replica="r1", wall_ms=1)
    b = version("  tea, not coffee ", replica="r2", wall_ms=2)
    resolution = NearDuplicate(embedder=Exploding())(conflict(a, b))
    assert resolution is not None and resolution.picked == b


@pytest.mark.model
def test_near_duplicate_with_the_real_model_tells_paraphrase_from_contradiction(
    model_embedder: SentenceTransformerEmbedder,
) -> None:
    resolver = NearDuplicate(0.75, embedder=model_embedder)
    same = conflict(
        version("The user prefers tea over coffee.", replica="r1"),
        version("The user likes tea more than coffee.", replica="r2", wall_ms=5_000),
    )
    different = conflict(
        version("The user prefers tea over coffee.", replica="r1"),
        version("The user's flight leaves at 9am.", replica="r2"),
    )
    assert resolver(same) is not None
    assert resolver(different) is None


def test_keep_all_resolver_always_decides() -> None:
    resolution = KeepAll()(conflict(version("a", replica="r1"), version("b", replica="r2")))
    assert resolution is not None and resolution.kind == "keep_all"


def test_chain_takes_the_first_opinion_and_names_who_gave_it() -> None:
    a = version("a", role="worker", confidence=0.9, replica="r1", wall_ms=1)
    b = version("b", role="worker", confidence=0.5, replica="r2", wall_ms=2)
    resolver = chain(RolePriority(["lead", "worker"]), HighestConfidence(), LastWriterWins())
    resolution = resolver(conflict(a, b))
    assert resolution is not None and resolution.picked == a
    assert resolution.resolver == "highest-confidence"
    assert "role-priority" in resolver.name


def test_chain_without_any_opinion_returns_none_and_needs_resolvers() -> None:
    a = version("a", confidence=0.5, replica="r1")
    b = version("b", confidence=0.5, replica="r2")
    assert chain(HighestConfidence())(conflict(a, b)) is None
    with pytest.raises(ValueError):
        chain()


def test_chain_names_plain_function_resolvers() -> None:
    def mine(c: object) -> Resolution:
        return Resolution.merged("both")

    resolution = chain(mine)(conflict(version("a"), version("b", replica="r2")))
    assert resolution is not None and resolution.resolver is not None
    assert resolution.resolver.endswith("mine")


version_specs = st.lists(
    st.tuples(
        st.sampled_from(["ship friday", "ship monday", "Ship Friday ", "hold the release"]),
        st.sampled_from([None, "lead", "worker"]),
        st.sampled_from([0.2, 0.5, 0.9]),
        st.integers(1, 5),
    ),
    min_size=2,
    max_size=5,
)


@settings(max_examples=50)
@given(version_specs, st.randoms(use_true_random=False))
def test_deterministic_resolvers_ignore_the_order_of_versions(
    specs: list[tuple[str, str | None, float, int]], rng: random.Random
) -> None:
    versions = [
        version(text, role=role, confidence=conf, wall_ms=wall, replica=f"r{i}")
        for i, (text, role, conf, wall) in enumerate(specs)
    ]
    shuffled = versions[:]
    rng.shuffle(shuffled)
    resolvers = [
        LastWriterWins(), RolePriority(["lead", "worker"]), HighestConfidence(),
        NearDuplicate(0.9, embedder=HashingEmbedder()), KeepAll(),
    ]
    for resolver in resolvers:
        first = resolver(Conflict("m", tuple(versions)))
        second = resolver(Conflict("m", tuple(shuffled)))
        assert (first is None) == (second is None)
        if first is not None and second is not None:
            assert (first.kind, first.picked) == (second.kind, second.picked)
            if first.kind != "keep_all":
                assert first.text == second.text

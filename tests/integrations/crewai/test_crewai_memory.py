"""crewai's own ``Memory(storage=MemmeshCrewStorage(...))`` end to end, with a
word-hashing embedder and an LLM that fails the test if crewai ever calls it; and the
records replicating between two replicas (storage sync, no network): a record one crew
saves is recalled by the other, and concurrent edits are a memmesh conflict that both
read the same way until an update settles it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crewai.memory.unified_memory import Memory
from replica_helpers import Clock, sync

from memmesh.integrations.crewai import MemmeshCrewStorage
from memmesh.semantic import HashingEmbedder
from memmesh.storage import Replica

EMBEDDER = HashingEmbedder(dimension=64)


def embed(texts: list[str]) -> list[list[float]]:
    rows: list[list[float]] = EMBEDDER.embed(list(texts)).tolist()
    return rows


class NoLLM:
    """Stands in for the analysis LLM and records any use (crewai catches the error and
    falls back to defaults, so the record is what the tests check): every field is given
    explicitly, so crewai must never need it."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        raise AssertionError(f"crewai used the LLM ({name})")


@pytest.fixture(autouse=True)
def llm() -> Iterator[NoLLM]:
    fake = NoLLM()
    yield fake
    assert fake.used == []


def memory_on(replica: Replica, llm: NoLLM, **options: Any) -> Memory:
    return Memory(storage=MemmeshCrewStorage(replica), embedder=embed, llm=llm,
                  consolidation_threshold=1.0, exploration_budget=0, **options)


@pytest.fixture
def memory(tmp_path: Path, llm: NoLLM) -> Iterator[Memory]:
    with Replica.open(tmp_path / "crew", durable=False) as replica:
        mem = memory_on(replica, llm)
        yield mem
        mem.close()


def remember(mem: Memory, text: str, scope: str = "/", **fields: Any) -> Any:
    fields.setdefault("categories", ["notes"])
    fields.setdefault("importance", 0.6)
    return mem.remember(text, scope=scope, **fields)


def test_memory_remembers_recalls_updates_and_forgets(memory: Memory) -> None:
    tea = remember(memory, "alice drinks green tea every morning", "/team/alice",
                   categories=["preferences"], importance=0.9)
    remember(memory, "the deploy window is friday afternoon", "/team/ops")
    hits = memory.recall("green tea", depth="shallow", limit=1)
    assert [h.record.content for h in hits] == [tea.content]
    assert [h.record.id for h in memory.recall("green tea", depth="deep")][:1] == [tea.id]
    assert memory.recall("green tea", scope="/team/ops", depth="shallow")[0].record.content \
        == "the deploy window is friday afternoon"
    assert memory.list_scopes("/team") == ["/team/alice", "/team/ops"]
    assert memory.list_categories() == {"preferences": 1, "notes": 1}
    assert memory.info("/team").record_count == 2
    assert "/team/alice" in memory.tree()

    memory.update(tea.id, content="alice switched to black coffee")
    hits = memory.recall("black coffee", depth="shallow", limit=1)
    assert [(h.record.id, h.record.content) for h in hits] == [
        (tea.id, "alice switched to black coffee")]
    assert memory.forget(scope="/team/alice") == 1
    assert [m.record.content for m in memory.recall("coffee", depth="shallow")] == [
        "the deploy window is friday afternoon"]
    memory.reset()
    assert memory.list_records() == []


def test_remember_many_saves_in_the_background_and_recall_waits_for_it(
        memory: Memory) -> None:
    memory.remember_many(["the office is in lisbon", "standup is at nine"], scope="/facts",
                         categories=["facts"], importance=0.5)
    hits = memory.recall("where is the office lisbon", depth="shallow", limit=1)
    assert [h.record.content for h in hits] == ["the office is in lisbon"]
    assert len(memory.list_records()) == 2


def test_a_private_record_is_recalled_only_by_its_source(memory: Memory) -> None:
    remember(memory, "alice's locker code is 4711", "/private", source="alice", private=True)
    assert memory.recall("locker code", depth="shallow") == []
    assert memory.recall("locker code", depth="shallow", source="bob") == []
    assert [h.record.source for h in memory.recall("locker code", depth="shallow",
                                                   source="alice")] == ["alice"]


def test_a_record_saved_by_one_crew_is_recalled_by_another_after_sync(
        pair: tuple[Replica, Replica, Clock], llm: NoLLM) -> None:
    a, b, _ = pair
    crew_a, crew_b = memory_on(a, llm, root_scope="/crew/research"), memory_on(b, llm)
    saved = remember(crew_a, "the customer wants the report in french", "/client")
    assert crew_b.recall("report french", depth="shallow") == []
    sync(a, b)
    [hit] = crew_b.recall("report in french", depth="shallow", limit=1)
    assert (hit.record.id, hit.record.scope) == (saved.id, "/crew/research/client")
    assert hit.record.embedding == pytest.approx(saved.embedding, abs=1e-6)
    crew_b.forget(record_ids=[saved.id])
    sync(a, b)
    assert crew_a.recall("report french", depth="shallow") == []


def test_concurrent_edits_are_a_conflict_read_as_the_newest_until_an_update_settles_it(
        pair: tuple[Replica, Replica, Clock], llm: NoLLM) -> None:
    a, b, clock = pair
    crew_a, crew_b = memory_on(a, llm), memory_on(b, llm)
    record = remember(crew_a, "the launch is on monday", "/plans")
    sync(a, b)
    crew_a.update(record.id, content="the launch is on tuesday")
    clock.advance(1000)
    crew_b.update(record.id, content="the launch is on wednesday")
    sync(a, b)
    [conflict] = a.conflicts(app_id="crewai")
    assert sorted(v.text for v in conflict.versions) == ["the launch is on tuesday",
                                                         "the launch is on wednesday"]
    for crew in (crew_a, crew_b):  # every replica reads the same version: the newest
        assert crew.list_records()[0].content == "the launch is on wednesday"
        assert [h.record.content for h in crew.recall("launch", depth="shallow")] == [
            "the launch is on wednesday"]
    crew_a.update(record.id, content="the launch is on thursday")
    sync(a, b)
    assert a.conflicts(app_id="crewai") == [] and b.conflicts(app_id="crewai") == []
    assert crew_b.list_records()[0].content == "the launch is on thursday"

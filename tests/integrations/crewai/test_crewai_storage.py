"""``MemmeshCrewStorage`` honours crewai's ``StorageBackend`` protocol as crewai's own
backends do: the behaviours they share are checked against ``LanceDBStorage`` too (same
test, both backends), the memmesh-only ones (cosine scores, whole-component scope
prefixes, typed errors, base scopes, local access times) on the replica alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crewai.memory.storage.backend import EmbeddingDimensionMismatchError, StorageBackend
from crewai.memory.storage.lancedb_storage import LanceDBStorage
from crewai.memory.types import MemoryRecord
from replica_helpers import Clock, sync

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.integrations.crewai import MemmeshCrewStorage, agent_scope
from memmesh.storage import Replica

T0 = datetime(2026, 1, 1, 12, 0, 0)


def rec(content: str, vector: list[float], *, scope: str = "/", categories: tuple[str, ...] = (),
        minutes: int = 0, **fields: Any) -> MemoryRecord:
    return MemoryRecord(content=content, embedding=vector, scope=scope,
                        categories=list(categories),
                        created_at=T0 + timedelta(minutes=minutes),
                        last_accessed=T0 + timedelta(minutes=minutes), **fields)


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    with Replica.open(tmp_path / "replica", durable=False) as r:
        yield r


@pytest.fixture
def memmesh(replica: Replica) -> MemmeshCrewStorage:
    return MemmeshCrewStorage(replica)


@pytest.fixture(params=["memmesh", "lancedb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The storage under test, and crewai's LanceDB backend for the shared behaviours."""
    if request.param == "lancedb":
        yield LanceDBStorage(path=tmp_path / "lance", compact_every=0)
        return
    with Replica.open(tmp_path / "replica", durable=False) as r:
        yield MemmeshCrewStorage(r)


def team_records() -> dict[str, MemoryRecord]:
    return {
        "tea": rec("alice drinks green tea", [1, 0, 0, 0], scope="/crew/a/agent/writer",
                   categories=("pref",), minutes=1, metadata={"user": "alice"},
                   importance=0.9),
        "deploy": rec("deploys happen on friday", [0, 1, 0, 0], scope="/crew/a",
                      categories=("ops",), minutes=2, metadata={"user": "bob"}),
        "lunch": rec("lunch at noon", [0.7, 0.7, 0, 0], scope="/crew/b",
                     categories=("pref", "food"), minutes=3, metadata={"user": "alice"}),
        "root": rec("the company is called acme", [0, 0, 1, 0], minutes=4),
    }


@pytest.fixture
def team(backend: Any) -> dict[str, MemoryRecord]:
    records = team_records()
    backend.save(list(records.values()))
    return records


def contents(records: list[MemoryRecord]) -> list[str]:
    return [r.content for r in records]


# -- behaviours shared with LanceDBStorage --------------------------------------------------


def test_it_is_a_crewai_storage_backend(backend: Any) -> None:
    assert isinstance(backend, StorageBackend)


def test_a_saved_record_reads_back_whole(backend: Any, team: dict[str, MemoryRecord]) -> None:
    tea = team["tea"]
    got = backend.get_record(tea.id)
    assert got is not None
    assert got.model_dump() == tea.model_dump()
    assert got.embedding == pytest.approx(tea.embedding)
    assert backend.get_record("no-such-id") is None


def test_update_replaces_the_record_with_its_id(backend: Any,
                                               team: dict[str, MemoryRecord]) -> None:
    changed = team["deploy"].model_copy(update={
        "content": "deploys moved to monday", "categories": ["ops", "calendar"],
        "metadata": {"user": "carol"}, "importance": 0.2, "embedding": [0, 0, 0, 1]})
    backend.update(changed)
    got = backend.get_record(changed.id)
    assert got.model_dump() == changed.model_dump()
    assert backend.count() == 4


def test_search_ranks_by_similarity_and_applies_the_filters(
        backend: Any, team: dict[str, MemoryRecord]) -> None:
    hits = backend.search([1, 0.1, 0, 0], limit=10)
    assert contents([r for r, _ in hits])[:3] == ["alice drinks green tea", "lunch at noon",
                                                  "deploys happen on friday"]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert contents([r for r, _ in backend.search([1, 0, 0, 0], scope_prefix="/crew/a")]) \
        == ["alice drinks green tea", "deploys happen on friday"]
    assert contents([r for r, _ in backend.search([1, 0, 0, 0], categories=["food", "ops"])]) \
        == ["lunch at noon", "deploys happen on friday"]
    assert contents([r for r, _ in backend.search([1, 0, 0, 0],
                                                  metadata_filter={"user": "alice"})]) \
        == ["alice drinks green tea", "lunch at noon"]
    assert len(backend.search([1, 0, 0, 0], limit=2)) == 2
    best = hits[0][1]
    assert contents([r for r, _ in backend.search([1, 0.1, 0, 0], min_score=best)]) \
        == ["alice drinks green tea"]


def test_list_records_pages_newest_first(backend: Any, team: dict[str, MemoryRecord]) -> None:
    assert contents(backend.list_records()) == [
        "the company is called acme", "lunch at noon", "deploys happen on friday",
        "alice drinks green tea"]
    assert contents(backend.list_records(limit=2, offset=1)) == [
        "lunch at noon", "deploys happen on friday"]
    assert contents(backend.list_records(scope_prefix="/crew/a")) == [
        "deploys happen on friday", "alice drinks green tea"]
    assert backend.list_records(limit=0) == []


def test_scope_info_scopes_categories_and_counts(backend: Any,
                                                team: dict[str, MemoryRecord]) -> None:
    info = backend.get_scope_info("/crew")
    assert (info.path, info.record_count) == ("/crew", 3)
    assert info.categories == ["food", "ops", "pref"]
    assert info.child_scopes == ["/crew/a", "/crew/b"]
    assert (info.oldest_record, info.newest_record) == (T0 + timedelta(minutes=1),
                                                        T0 + timedelta(minutes=3))
    assert backend.get_scope_info("/").record_count == 4
    assert backend.get_scope_info("/nowhere").record_count == 0
    assert backend.list_scopes("/") == ["/crew"]
    assert backend.list_scopes("/crew") == ["/crew/a", "/crew/b"]
    assert backend.list_scopes("/crew/a") == ["/crew/a/agent"]
    assert backend.list_categories() == {"pref": 2, "ops": 1, "food": 1}
    assert backend.list_categories(scope_prefix="/crew/a") == {"pref": 1, "ops": 1}
    assert (backend.count(), backend.count("/crew"), backend.count("/crew/b")) == (4, 3, 1)


def test_delete_by_ids_categories_metadata_and_age(backend: Any,
                                                  team: dict[str, MemoryRecord]) -> None:
    assert backend.delete(record_ids=[team["root"].id]) == 1
    assert backend.delete(categories=["food"]) == 1
    assert backend.delete(metadata_filter={"user": "bob"}) == 1
    assert backend.delete(categories=["pref"], older_than=T0) == 0
    assert contents(backend.list_records()) == ["alice drinks green tea"]
    assert backend.delete(categories=["pref"], older_than=T0 + timedelta(minutes=2)) == 1
    assert backend.count() == 0


def test_reset_a_scope_then_everything(backend: Any, team: dict[str, MemoryRecord]) -> None:
    backend.reset("/crew/a")
    assert contents(backend.list_records()) == ["the company is called acme",
                                                "lunch at noon"]
    backend.reset()
    assert backend.count() == 0
    assert backend.search([1, 0, 0, 0]) == []


def test_async_methods_match_the_sync_ones(backend: Any) -> None:
    record = rec("async works", [0, 0, 0, 1], categories=("x",))

    async def run() -> tuple[list[tuple[MemoryRecord, float]], int]:
        await backend.asave([record])
        hits = await backend.asearch([0, 0, 0, 1], categories=["x"])
        return hits, await backend.adelete(record_ids=[record.id])

    hits, deleted = asyncio.run(run())
    assert contents([r for r, _ in hits]) == ["async works"]
    assert deleted == 1
    assert backend.count() == 0


# -- memmesh's own conventions --------------------------------------------------------------


def test_scores_are_cosine_similarities(memmesh: MemmeshCrewStorage) -> None:
    memmesh.save(list(team_records().values()))
    scores = {r.content: s for r, s in memmesh.search([1, 0, 0, 0])}
    assert scores["alice drinks green tea"] == pytest.approx(1.0)
    assert scores["lunch at noon"] == pytest.approx(0.7071, abs=1e-4)
    assert scores["deploys happen on friday"] == pytest.approx(0.0)


def test_a_scope_prefix_matches_whole_path_components(memmesh: MemmeshCrewStorage) -> None:
    memmesh.save([rec("in crew", [1, 0], scope="/crew/x"),
                  rec("in crewai", [1, 0], scope="/crewai/y")])
    assert contents(memmesh.list_records(scope_prefix="/crew")) == ["in crew"]
    assert contents(memmesh.list_records(scope_prefix="crew/")) == ["in crew"]
    assert memmesh.count("/crewai") == 1


def test_saving_a_known_id_replaces_it(memmesh: MemmeshCrewStorage) -> None:
    first = rec("v1", [1, 0])
    memmesh.save([first])
    memmesh.save([first.model_copy(update={"content": "v2"})])
    assert contents(memmesh.list_records()) == ["v2"]


def test_a_vector_of_another_dimension_is_a_typed_error_and_changes_nothing(
        memmesh: MemmeshCrewStorage, replica: Replica) -> None:
    memmesh.save([rec("three", [1, 0, 0])])
    seq = replica.journal_seq()
    with pytest.raises(EmbeddingDimensionMismatchError) as caught:
        memmesh.save([rec("ok", [0, 1, 0]), rec("four", [1, 0, 0, 0])])
    assert isinstance(caught.value, MemmeshError)
    with pytest.raises(EmbeddingDimensionMismatchError):
        memmesh.search([1, 0])
    assert replica.journal_seq() == seq
    assert memmesh.count() == 1


def test_metadata_that_is_not_plain_data_is_refused_before_anything_is_written(
        memmesh: MemmeshCrewStorage, replica: Replica) -> None:
    seq = replica.journal_seq()
    with pytest.raises(InvalidArgumentError):
        memmesh.save([rec("fine", [1, 0]), rec("bad", [1, 0], metadata={"when": object()})])
    assert replica.journal_seq() == seq and memmesh.count() == 0


def test_an_agent_path_sets_memmeshs_agent_id(memmesh: MemmeshCrewStorage,
                                              replica: Replica) -> None:
    assert agent_scope("/crew/a/agent/writer/notes") == {"agent_id": "writer"}
    assert agent_scope("/crew/a") == {}
    record = rec("note", [1, 0], scope="/crew/a/agent/writer")
    memmesh.save([record])
    [stored] = replica.list(app_id="crewai")
    assert (stored.agent_id, stored.text) == ("writer", "note")
    moved = record.model_copy(update={"scope": "/crew/a/agent/editor"})
    memmesh.update(moved)  # the header is immutable: re-created under the new agent
    [stored] = replica.list(app_id="crewai")
    assert stored.agent_id == "editor"
    assert memmesh.get_record(record.id).scope == "/crew/a/agent/editor"
    assert memmesh.count() == 1


def test_a_store_sees_and_resets_only_its_own_scope(replica: Replica) -> None:
    crew_a = MemmeshCrewStorage(replica, user_id="alice")
    crew_b = MemmeshCrewStorage(replica, user_id="bob")
    other = replica.add("not a crewai memory", app_id="crewai", user_id="alice")
    crew_a.save([rec("alice's", [1, 0])])
    crew_b.save([rec("bob's", [1, 0])])
    crew_a.reset()
    assert crew_a.count() == 0
    assert contents(crew_b.list_records()) == ["bob's"]
    assert replica.get(other) is not None


def test_touching_records_is_local_and_not_a_write(memmesh: MemmeshCrewStorage,
                                                   replica: Replica) -> None:
    record = rec("touched", [1, 0])
    memmesh.save([record])
    seq = replica.journal_seq()
    memmesh.touch_records([record.id, "unknown"])
    assert replica.journal_seq() == seq
    assert memmesh.get_record(record.id).last_accessed > record.last_accessed


def test_open_owns_its_replica_and_close_closes_it(tmp_path: Path) -> None:
    storage = MemmeshCrewStorage.open(tmp_path / "owned", user_id="u", durable=False)
    storage.save([rec("kept", [1, 0])])
    storage.close()
    again = MemmeshCrewStorage.open(tmp_path / "owned", user_id="u")
    try:
        assert contents(again.list_records()) == ["kept"]
    finally:
        again.close()


def test_bad_options_are_typed_errors(replica: Replica) -> None:
    with pytest.raises(InvalidArgumentError):
        MemmeshCrewStorage(replica, policy="newest")
    scopeless: Callable[[str], dict[str, str | None]] = lambda path: {"run_id": "r"}  # noqa: E731
    storage = MemmeshCrewStorage(replica, scope=scopeless)
    with pytest.raises(InvalidArgumentError):
        storage.save([rec("x", [1, 0])])


def test_an_update_made_concurrently_with_a_delete_survives_it(
        pair: tuple[Replica, Replica, Clock]) -> None:
    a, b, _ = pair
    on_a, on_b = MemmeshCrewStorage(a), MemmeshCrewStorage(b)
    record = rec("v1", [1, 0])
    on_a.save([record])
    sync(a, b)
    assert on_a.delete(record_ids=[record.id]) == 1
    on_b.update(record.model_copy(update={"content": "v2"}))
    sync(a, b)
    assert [r.content for r in on_a.list_records()] == ["v2"]
    assert [r.content for r in on_b.list_records()] == ["v2"]


@pytest.mark.parametrize("mark", [
    {"id": "x", "created_at": "2026-01-01T00:00:00", "metadata": 5},
    {"id": "x", "created_at": "2026-01-01T00:00:00", "categories": "pref"},
    {"id": 7, "created_at": "2026-01-01T00:00:00"},
    {"id": "x", "created_at": "yesterday"},
    {"id": "x", "created_at": "2026-01-01T00:00:00", "vector": b"\x00\x00\x80"},
])
def test_a_memory_with_a_misshapen_crewai_mark_is_not_a_record(
        memmesh: MemmeshCrewStorage, replica: Replica, mark: dict[str, Any]) -> None:
    """Any member holding the cluster key can write such a memory: it must not break
    the readers' storage."""
    replica.add("forged", app_id="crewai", metadata={"crewai": mark})
    memmesh.save([rec("genuine", [1, 0], categories=("pref",))])
    assert contents(memmesh.list_records()) == ["genuine"]
    assert contents([r for r, _ in memmesh.search([1, 0], metadata_filter={"a": None})]) \
        == ["genuine"]
    assert memmesh.list_categories() == {"pref": 1}


def test_of_several_records_with_one_id_in_a_batch_the_last_is_kept(
        memmesh: MemmeshCrewStorage, replica: Replica) -> None:
    first = rec("first", [1, 0])
    memmesh.save([first, first.model_copy(update={"content": "last"})])
    assert contents(memmesh.list_records()) == ["last"]
    assert len(replica.list(app_id="crewai")) == 1


def test_a_trimmed_journal_makes_the_storage_rescan(replica: Replica,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage's cursor fell off the truncated journal while another storage on the
    same replica deleted a record: it rebuilds from the replica, not from its cache."""
    from memmesh.storage import _journal as journal

    monkeypatch.setattr(journal, "JOURNAL_MAX", 4)
    reader, writer = MemmeshCrewStorage(replica), MemmeshCrewStorage(replica)
    doomed = rec("doomed", [1, 0])
    writer.save([doomed])
    assert reader.get_record(doomed.id) is not None
    writer.delete(record_ids=[doomed.id])
    fresh = [rec(f"fresh {n}", [0, 1]) for n in range(10)]
    for record in fresh:  # pushes the delete out of the journal
        writer.save([record])
    assert replica.changes_since(1).reset  # the delete's entry is gone
    assert reader.get_record(doomed.id) is None
    assert sorted(contents(reader.list_records(limit=50))) == sorted(r.content for r in fresh)

"""MemmeshMemory: an AutoGen Memory on a replica, shared between agents by replication.

Fast: the word-hashing embedder, real autogen_core model contexts, no model.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import lmdb
import pytest
from autogen_core import CancellationToken, Image
from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
from autogen_core.model_context import (
    BufferedChatCompletionContext,
    UnboundedChatCompletionContext,
)
from autogen_core.models import SystemMessage, UserMessage
from replica_helpers import Clock, sync

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.integrations.autogen import (
    ComponentConfigError,
    HashingEmbedderConfig,
    MemmeshMemory,
    MemmeshMemoryConfig,
    MemoryClosedError,
    UnsupportedContentError,
)
from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

Pair = tuple[Replica, Replica, Clock]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def memory(replica: Replica, **options: Any) -> MemmeshMemory:
    options.setdefault("embedder", HashingEmbedder())
    return MemmeshMemory(replica, **options)


def text(content: str, **metadata: Any) -> MemoryContent:
    return MemoryContent(content=content, mime_type=MemoryMimeType.TEXT,
                         metadata=metadata or None)


async def ask(mem: MemmeshMemory, question: str, buffer: int = 5) -> tuple[str, list[Any]]:
    """The system message ``update_context`` adds after ``question``, and the results."""
    context = BufferedChatCompletionContext(buffer_size=buffer)
    await context.add_message(UserMessage(content=question, source="user"))
    result = await mem.update_context(context)
    messages = await context.get_messages()
    added = [m.content for m in messages if isinstance(m, SystemMessage)]
    return (added[0] if added else ""), result.memories.results


# -- the Memory protocol on one replica -------------------------------------------------


def test_text_markdown_and_json_contents_round_trip_with_their_mime_type_and_metadata(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica, user_id="alice", k=5)
            await mem.add(text("alice prefers dark mode", tags=["ui", "theme"], n=1))
            await mem.add(MemoryContent(content="# diet\nalice is *vegan*",
                                        mime_type="text/markdown"))
            await mem.add(MemoryContent(content={"city": "Lyon", "pets": ["cat"]},
                                        mime_type=MemoryMimeType.JSON,
                                        metadata={"source": "form"}))
            found = {str(r.mime_type.value): r
                     for r in (await mem.query("alice dark mode vegan lyon")).results}
            assert found["text/plain"].content == "alice prefers dark mode"
            assert found["text/plain"].metadata["tags"] == ["ui", "theme"]
            assert found["text/plain"].metadata["n"] == 1
            assert found["text/markdown"].content == "# diet\nalice is *vegan*"
            assert found["application/json"].content == {"city": "Lyon", "pets": ["cat"]}
            assert found["application/json"].metadata["source"] == "form"
            for result in found.values():
                assert replica.get(result.metadata["id"]) is not None
                assert -1.0 <= result.metadata["score"] <= 1.0
            await mem.close()

    run(main())


def test_add_does_not_mutate_the_callers_metadata(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            content = text("alice likes tea", topic="drinks")
            await memory(replica).add(content)
            assert content.metadata == {"topic": "drinks"}

    run(main())


@pytest.mark.parametrize("content", [
    MemoryContent(content=b"\x89PNG", mime_type=MemoryMimeType.BINARY),
    MemoryContent(content=Image.from_base64(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
        "AAAABJRU5ErkJggg=="), mime_type=MemoryMimeType.IMAGE),
    MemoryContent(content="<b>hi</b>", mime_type="text/html"),
    MemoryContent(content="not a dict", mime_type=MemoryMimeType.JSON),
    MemoryContent(content=b"bytes", mime_type=MemoryMimeType.TEXT),
    MemoryContent(content={"a": 1}, mime_type=MemoryMimeType.MARKDOWN),
    MemoryContent(content={"when": object()}, mime_type=MemoryMimeType.JSON),
], ids=["binary", "image", "unknown-mime", "json-str", "text-bytes", "markdown-dict",
        "json-unserialisable"])
def test_content_without_searchable_text_is_refused_and_nothing_is_written(
        tmp_path: Path, content: MemoryContent) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica)
            with pytest.raises(UnsupportedContentError) as caught:
                await mem.add(content)
            assert isinstance(caught.value, MemmeshError)
            with pytest.raises(UnsupportedContentError):
                await mem.query(content)
            assert replica.list() == []

    run(main())


def test_metadata_that_is_not_plain_data_is_refused_and_nothing_is_written(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            with pytest.raises(InvalidArgumentError):
                await memory(replica).add(text("x", when=object()))
            assert replica.list() == []

    run(main())


def test_query_accepts_a_memory_content_as_well_as_a_str(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica, k=1)
            await mem.add(text("the deploy key rotates every monday"))
            await mem.add(MemoryContent(content={"region": "eu-west"},
                                        mime_type="application/json"))
            by_text = await mem.query(text("when does the deploy key rotate"))
            assert by_text.results[0].content == "the deploy key rotates every monday"
            by_json = await mem.query(MemoryContent(content={"region": "eu-west"},
                                                    mime_type=MemoryMimeType.JSON))
            assert by_json.results[0].content == {"region": "eu-west"}
            assert by_json.results[0].metadata["score"] == pytest.approx(1.0)

    run(main())


def test_k_and_score_threshold_bound_the_results_and_can_be_overridden_per_query(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica, k=2, score_threshold=0.3)
            for line in ("alice likes green tea", "alice likes black tea",
                         "alice likes tea with milk", "the printer is on floor two"):
                await mem.add(text(line))
            results = (await mem.query("alice likes tea")).results
            assert len(results) == 2
            assert all(r.metadata["score"] >= 0.3 for r in results)
            everything = (await mem.query("alice likes tea", k=4, score_threshold=None)).results
            assert len(everything) == 4
            relevant = (await mem.query("alice likes tea", k=4)).results
            assert "the printer is on floor two" not in [r.content for r in relevant]
            assert len(relevant) == 3
            strict = (await mem.query("alice likes tea", score_threshold=0.99)).results
            assert strict == []

    run(main())


@pytest.mark.parametrize("options", [{"k": 0}, {"k": "3"}, {"score_threshold": 2.0},
                                     {"top_k": 3}])
def test_bad_query_options_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica, pytest.raises(InvalidArgumentError):
            await memory(replica).query("anything", **options)

    run(main())


def test_bad_construction_arguments_are_refused(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r") as replica, Replica.open(tmp_path / "s") as other:
        for options in ({"k": -1}, {"user_id": ""}, {"agent_id": 7}, {"tier": "public"},
                        {"reads": "union"},
                        {"index": SemanticIndex(other, HashingEmbedder())},
                        {"index": SemanticIndex(replica, HashingEmbedder()),
                         "embedder": HashingEmbedder()}):
            with pytest.raises(InvalidArgumentError):
                MemmeshMemory(replica, **options)


def test_update_context_adds_one_system_message_listing_the_relevant_memories(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica, user_id="alice", score_threshold=0.2)
            await mem.add(text("alice prefers dark mode in every editor"))
            await mem.add(text("alice is allergic to peanuts"))
            context = UnboundedChatCompletionContext()
            await context.add_message(UserMessage(content="hello", source="user"))
            await context.add_message(
                UserMessage(content=["which editor mode does alice prefer?"], source="user"))
            result = await mem.update_context(context)
            messages = await context.get_messages()
            assert len(messages) == 3 and isinstance(messages[-1], SystemMessage)
            assert messages[-1].content == ("\nRelevant memory content:\n"
                                            "1. alice prefers dark mode in every editor\n")
            assert [r.content for r in result.memories.results] == [
                "alice prefers dark mode in every editor"]

    run(main())


def test_update_context_adds_nothing_to_an_empty_context_or_when_nothing_matches(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica, score_threshold=0.5)
            await mem.add(text("alice prefers dark mode"))
            empty = BufferedChatCompletionContext(buffer_size=3)
            assert (await mem.update_context(empty)).memories.results == []
            assert await empty.get_messages() == []
            added, results = await ask(mem, "quarterly revenue forecast")
            assert added == "" and results == []

    run(main())


def test_the_memory_drops_into_agents_where_list_memory_does(tmp_path: Path) -> None:
    """Same protocol surface as autogen_core's own ListMemory: a Memory component with
    the same component type, and update_context results of the same shape."""
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica)
            listed = ListMemory()
            for target in (mem, listed):
                await target.add(text("alice prefers dark mode"))
            for target in (mem, listed):
                added, results = await ask(target, "does alice prefer dark mode?")
                assert added.endswith("1. alice prefers dark mode\n")
                assert [r.content for r in results] == ["alice prefers dark mode"]
            assert mem.component_type == listed.component_type == "memory"

    run(main())


def test_a_cancelled_token_cancels_an_add_before_it_writes(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            token = CancellationToken()
            token.cancel()
            with pytest.raises(asyncio.CancelledError):
                await memory(replica).add(text("never stored"), cancellation_token=token)
            assert replica.list() == []

    run(main())


def test_a_closed_memory_refuses_calls_and_close_is_idempotent(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = memory(replica)
            await mem.close()
            await mem.close()
            with pytest.raises(MemoryClosedError):
                await mem.add(text("late"))
            with pytest.raises(MemoryClosedError):
                await mem.query("late")
            assert replica.list() == []  # a replica handed in stays open

    run(main())


# -- scopes ---------------------------------------------------------------------------


def test_queries_read_the_view_of_the_scope_and_exact_reads_keep_to_the_scope(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            alice = memory(replica, user_id="alice")
            bob = memory(replica, user_id="bob")
            alice_agent = memory(replica, user_id="alice", agent_id="planner")
            exact_agent = memory(replica, user_id="alice", agent_id="planner",
                                 reads="exact")
            await alice.add(text("prefers dark mode"))
            await bob.add(text("prefers light mode"))
            await alice_agent.add(text("prefers tabs"))
            assert [r.content for r in (await alice.query("prefers mode tabs")).results] \
                == ["prefers dark mode"]
            assert [r.content for r in (await bob.query("prefers mode tabs")).results] \
                == ["prefers light mode"]
            assert sorted(r.content for r in (await alice_agent.query("prefers")).results) \
                == ["prefers dark mode", "prefers tabs"]
            assert [r.content for r in (await exact_agent.query("prefers")).results] \
                == ["prefers tabs"]
            assert (alice_agent.reads, exact_agent.reads) == ("view", "exact")
            record = replica.list(user_id="alice", agent_id="planner")[0]
            assert (record.app_id, record.versions[0].actor) == ("autogen", "planner")

    run(main())


def test_an_agent_scoped_memory_finds_the_user_level_fact_and_says_its_tier(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            await memory(replica, user_id="alice").add(text("alice speaks French"))
            replica.add("every reply is polite", app_id="autogen")
            billing = memory(replica, user_id="alice", agent_id="billing", k=5)
            results = (await billing.query("which language does alice speak")).results
            tiers = {r.content: r.metadata["scope_tier"] for r in results}
            assert tiers == {"alice speaks French": "user", "every reply is polite": "app"}
            added, _ = await ask(billing, "which language does alice speak?")
            assert "alice speaks French" in added

    run(main())


def test_on_equal_score_the_most_specific_tier_comes_first(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            replica.add("the invoice is due friday", app_id="autogen")
            await memory(replica, user_id="alice").add(text("the invoice is due friday"))
            billing = memory(replica, user_id="alice", agent_id="billing", k=5)
            await billing.add(text("the invoice is due friday"))
            results = (await billing.query("the invoice is due friday")).results
            assert [r.metadata["scope_tier"] for r in results] == ["agent", "user", "app"]

    run(main())


def test_a_view_never_shows_a_memory_of_another_app_user_agent_or_run(
        tmp_path: Path) -> None:
    values = {"app_id": (None, "autogen", "crm"), "user_id": (None, "alice", "bob"),
              "agent_id": (None, "billing", "support"), "run_id": (None, "r1")}
    view = {"app_id": "autogen", "user_id": "alice", "agent_id": "billing", "run_id": None}

    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            expected = set()
            for scope in itertools.product(*values.values()):
                fields = dict(zip(values, scope, strict=True))
                if all(v is None for v in scope):
                    continue
                memory_id = replica.add(f"fact {sorted(fields.items())}", **fields)
                if all(v is None or v == view[name] for name, v in fields.items()):
                    expected.add(memory_id)
            billing = memory(replica, k=100, **view)
            results = (await billing.query("fact")).results
            assert {r.metadata["id"] for r in results} == expected
            assert len(expected) == 7

    run(main())


def test_clear_removes_the_own_scope_and_leaves_the_user_level_memories_it_reads(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            await memory(replica, user_id="alice").add(text("alice speaks French"))
            billing = memory(replica, user_id="alice", agent_id="billing", k=5)
            await billing.add(text("alice pays by card"))
            assert len((await billing.query("alice")).results) == 2
            await billing.clear()
            assert [r.content for r in (await billing.query("alice")).results] == [
                "alice speaks French"]
            assert [r.versions[0].text for r in replica.list(user_id="alice")] == [
                "alice speaks French"]

    run(main())


def test_a_memory_without_scope_fields_reads_exactly(tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            replica.add("an unscoped note")
            replica.add("a note of the autogen app", app_id="autogen")
            bare = memory(replica, app_id=None)
            assert [r.content for r in (await bare.query("note", k=5)).results] == [
                "an unscoped note"]

    run(main())


def test_clear_deletes_only_this_scope_and_the_delete_replicates(pair: Pair) -> None:
    a, b, _ = pair

    async def main() -> None:
        alice_a, bob_a = memory(a, user_id="alice"), memory(a, user_id="bob")
        alice_agent_a = memory(a, user_id="alice", agent_id="planner")
        await alice_a.add(text("alice prefers dark mode"))
        await alice_a.add(text("alice likes tea"))
        await bob_a.add(text("bob prefers light mode"))
        await alice_agent_a.add(text("alice's planner uses tabs"))
        other_app = a.add("alice in another app", app_id="crm", user_id="alice")
        sync(a, b)
        alice_b = memory(b, user_id="alice")
        assert len((await alice_b.query("alice", k=5)).results) == 2

        await alice_a.clear()
        assert (await alice_a.query("alice", k=5)).results == []
        sync(a, b)
        assert (await alice_b.query("alice", k=5)).results == []
        for replica in (a, b):
            left = sorted(r.versions[0].text for r in replica.list())
            assert left == ["alice in another app", "alice's planner uses tabs",
                            "bob prefers light mode"]
            assert replica.get(other_app) is not None

    run(main())


def test_clear_keeps_a_memory_added_concurrently_on_another_replica(pair: Pair) -> None:
    a, b, _ = pair

    async def main() -> None:
        mem_a, mem_b = memory(a, user_id="alice"), memory(b, user_id="alice")
        await mem_a.add(text("old fact"))
        sync(a, b)
        await mem_a.clear()
        await mem_b.add(text("new fact written while A cleared"))
        sync(a, b)
        for mem in (mem_a, mem_b):
            assert [r.content for r in (await mem.query("fact", k=5)).results] == [
                "new fact written while A cleared"]

    run(main())


def test_run_scoped_memories_stay_on_their_replica_unless_shared(pair: Pair) -> None:
    a, b, _ = pair

    async def main() -> None:
        private_a = memory(a, user_id="alice", run_id="r1")
        shared_a = memory(a, user_id="alice", run_id="r2", tier="shared")
        await private_a.add(text("scratch note of run one"))
        await shared_a.add(text("handover note of run two"))
        sync(a, b)
        assert (await memory(b, user_id="alice", run_id="r1").query("note")).results == []
        assert [r.content for r in
                (await memory(b, user_id="alice", run_id="r2").query("note")).results] == [
            "handover note of run two"]

    run(main())


# -- replication ------------------------------------------------------------------------


def test_a_memory_added_on_one_replica_is_queried_and_injected_on_the_other(
        pair: Pair) -> None:
    a, b, _ = pair

    async def main() -> None:
        writer = memory(a, user_id="alice", agent_id="profiler")
        reader = memory(b, user_id="alice", agent_id="profiler", score_threshold=0.2)
        assert (await reader.query("dark mode")).results == []
        await writer.add(text("alice prefers dark mode in every editor", source="chat"))
        added, _ = await ask(reader, "does alice prefer dark mode?")
        assert added == ""
        sync(a, b)
        results = (await reader.query("dark mode")).results
        assert [r.content for r in results] == ["alice prefers dark mode in every editor"]
        assert results[0].metadata["source"] == "chat"
        added, _ = await ask(reader, "does alice prefer dark mode?")
        assert "1. alice prefers dark mode in every editor" in added

    run(main())


def test_concurrent_edits_read_as_one_result_that_lists_the_conflicting_versions(
        pair: Pair) -> None:
    a, b, clock = pair

    async def main() -> None:
        mem_a = memory(a, user_id="alice", agent_id="planner")
        mem_b = memory(b, user_id="alice", agent_id="planner")
        await mem_a.add(text("the launch is on monday", owner="pm"))
        sync(a, b)
        memory_id = (await mem_a.query("launch")).results[0].metadata["id"]
        a.update(memory_id, "the launch is on tuesday", actor="agent-a")
        clock.advance(1)
        b.update(memory_id, "the launch is on friday", actor="agent-b")
        sync(a, b)
        for mem in (mem_a, mem_b):
            results = (await mem.query("when is the launch on friday")).results
            assert len(results) == 1
            best = results[0]
            assert best.content == "the launch is on friday"
            assert best.metadata["owner"] == "pm"
            assert best.metadata["conflict"] == [
                {"content": "the launch is on tuesday", "actor": "agent-a",
                 "replica": a.replica_id}]
            added, _ = await ask(mem, "when is the launch on friday")
            assert added == (
                "\nRelevant memory content:\n1. the launch is on friday [unresolved conflict;"
                " concurrent version(s): the launch is on tuesday (by agent-a)]\n")

    run(main())


# -- component config -----------------------------------------------------------------


def test_dump_and_load_component_reopen_the_replica_with_scope_and_settings(
        tmp_path: Path) -> None:
    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            mem = MemmeshMemory(replica, embedder=HashingEmbedderConfig(dimension=128),
                                name="prefs", user_id="alice", agent_id="planner", k=4,
                                score_threshold=0.1, tier="shared", reads="exact")
            await mem.add(text("alice prefers dark mode"))
            model = mem.dump_component()
            default = MemmeshMemoryConfig.model_validate(
                MemmeshMemory(replica, embedder=HashingEmbedder()).dump_component().config)
            assert default.reads == "view"
        assert model.provider == "memmesh.integrations.autogen.MemmeshMemory"
        config = MemmeshMemoryConfig.model_validate(model.config)
        assert (config.path, config.name, config.user_id, config.agent_id, config.k,
                config.score_threshold, config.tier, config.actor, config.reads) == (
            str(tmp_path / "r"), "prefs", "alice", "planner", 4, 0.1, "shared", "planner",
            "exact")
        assert config.embedder == HashingEmbedderConfig(dimension=128)

        loaded = MemmeshMemory.load_component(model.model_dump(mode="json"))
        assert isinstance(loaded, MemmeshMemory)
        assert (loaded.name, loaded.k, loaded.scope["user_id"], loaded.reads) == (
            "prefs", 4, "alice", "exact")
        assert [r.content for r in (await loaded.query("dark mode")).results] == [
            "alice prefers dark mode"]
        await loaded.close()
        with pytest.raises(lmdb.Error):  # the loaded memory owned its replica: closed
            loaded.replica.list()

    run(main())


def test_an_index_handed_in_dumps_its_embedder(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r") as replica:
        mem = MemmeshMemory(replica, index=SemanticIndex(replica, HashingEmbedder(64)))
        config = MemmeshMemoryConfig.model_validate(mem.dump_component().config)
        assert config.embedder == HashingEmbedderConfig(dimension=64)


def test_a_custom_embedder_has_no_config_and_dumping_says_so(tmp_path: Path) -> None:
    class Custom(HashingEmbedder):
        pass

    with Replica.open(tmp_path / "r") as replica, pytest.raises(ComponentConfigError):
        MemmeshMemory(replica, embedder=Custom()).dump_component()

"""langmem's store-backed memory tools on ``MemmeshStore`` replicas (issue 14).

Two agents, each a LangChain agent on its own replica with langmem's
``create_manage_memory_tool`` and ``create_search_memory_tool``, driven by a scripted
fake chat model (no network, no real model); the store's LangGraph ``IndexConfig``
embeds with memmesh's deterministic word-hashing embedder. What one agent saves,
updates or deletes, the other finds (or no longer finds) after sync, and so is what
langmem's background ``create_memory_store_manager`` extracts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import IndexConfig
from langmem import (
    create_manage_memory_tool,
    create_memory_store_manager,
    create_search_memory_tool,
)
from replica_helpers import sync

from memmesh.integrations.langgraph import MemmeshStore
from memmesh.semantic import HashingEmbedder

EMBEDDER = HashingEmbedder()
NAMESPACE = ("memories", "{langgraph_user_id}")
ALICE: RunnableConfig = {"configurable": {"langgraph_user_id": "alice"}}


def embed(texts: Sequence[str]) -> list[list[float]]:
    return [list(map(float, row)) for row in EMBEDDER.embed(list(texts))]


def index() -> IndexConfig:
    return {"dims": EMBEDDER.dimension, "embed": embed, "fields": ["content"]}


class ScriptedModel(GenericFakeChatModel):
    """Replies with the scripted messages in turn; tools are bound as the agent asks."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


def calls(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


def agent(store: MemmeshStore, *script: BaseMessage) -> Any:
    model = ScriptedModel(messages=iter([*script, AIMessage(content="done")]))
    tools = [create_manage_memory_tool(NAMESPACE), create_search_memory_tool(NAMESPACE)]
    return create_agent(model, tools, store=store)


def tool_result(state: dict[str, Any]) -> str:
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.status != "error", message.content
    return str(message.content)


def found(state: dict[str, Any]) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = json.loads(tool_result(state))
    return hits


@pytest.fixture
def stores(pair: Any) -> Iterator[tuple[MemmeshStore, MemmeshStore, Any, Any]]:
    a, b, _ = pair
    yield MemmeshStore(a, index=index()), MemmeshStore(b, index=index()), a, b


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_memory_one_agent_saves_is_found_by_the_other_after_sync(stores: Any) -> None:
    store_a, store_b, a, b = stores
    saved = agent(store_a, calls("manage_memory", content="Alice prefers dark mode"))
    assert tool_result(saved.invoke(ask("I like dark mode"), ALICE)).startswith(
        "created memory ")
    search = calls("search_memory", query="which mode does alice prefer")
    assert found(agent(store_b, search).invoke(ask("mode?"), ALICE)) == []
    sync(a, b)
    (hit,) = found(agent(store_b, search).invoke(ask("mode?"), ALICE))
    assert hit["value"] == {"content": "Alice prefers dark mode"}
    assert hit["namespace"] == ["memories", "alice"]
    query, content = embed(["which mode does alice prefer", "Alice prefers dark mode"])
    assert hit["score"] == pytest.approx(sum(q * c for q, c in zip(query, content, strict=True)),
                                         abs=1e-5)  # the similarity, as LangGraph's stores
    other_user: RunnableConfig = {"configurable": {"langgraph_user_id": "bob"}}
    assert found(agent(store_b, search).invoke(ask("mode?"), other_user)) == []


def test_updates_and_deletes_through_the_manage_tool_replicate(stores: Any) -> None:
    store_a, store_b, a, b = stores
    agent(store_a, calls("manage_memory", content="Alice prefers dark mode")).invoke(
        ask("dark"), ALICE)
    sync(a, b)
    (item,) = store_b.search(("memories", "alice"))
    update = calls("manage_memory", action="update", id=item.key,
                   content="Alice switched to light mode")
    agent(store_b, update).invoke(ask("light now"), ALICE)
    sync(a, b)
    search = calls("search_memory", query="alice mode")
    (hit,) = found(agent(store_a, search).invoke(ask("mode?"), ALICE))
    assert hit["value"] == {"content": "Alice switched to light mode"}
    agent(store_a, calls("manage_memory", action="delete", id=item.key)).invoke(
        ask("forget it"), ALICE)
    sync(a, b)
    assert found(agent(store_b, search).invoke(ask("mode?"), ALICE)) == []


def test_the_async_tools_share_memories_across_replicas_too(stores: Any) -> None:
    store_a, store_b, a, b = stores

    async def run() -> list[dict[str, Any]]:
        await agent(store_a, calls("manage_memory", content="The launch is on Monday")
                    ).ainvoke(ask("launch date"), ALICE)
        sync(a, b)
        state = await agent(store_b, calls("search_memory", query="when is the launch")
                            ).ainvoke(ask("when?"), ALICE)
        return found(state)

    (hit,) = asyncio.run(run())
    assert hit["value"] == {"content": "The launch is on Monday"}


def test_memories_the_store_manager_extracts_on_one_replica_are_searchable_on_the_other(
        stores: Any) -> None:
    store_a, store_b, a, b = stores
    extraction = calls("Memory", content="Alice prefers dark mode")
    manager = create_memory_store_manager(ScriptedModel(messages=iter([extraction])),
                                          namespace=NAMESPACE, store=store_a)
    (written,) = manager.invoke(ask("I prefer dark mode everywhere"), ALICE)
    assert written["value"] == {"kind": "Memory",
                                "content": {"content": "Alice prefers dark mode"}}
    sync(a, b)
    (hit,) = found(agent(store_b, calls("search_memory", query="dark mode")
                         ).invoke(ask("mode?"), ALICE))
    assert hit["key"] == written["key"]
    assert hit["value"]["content"] == {"content": "Alice prefers dark mode"}

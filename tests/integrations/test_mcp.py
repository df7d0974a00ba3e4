"""The MCP server, driven by the official SDK's own client over stdio.

Each test spawns ``python -m memmesh.integrations.mcp`` on a data directory the test prepared
(with the word-hashing embedder, so no model is loaded) and talks to it as any MCP
client would.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from replica_helpers import Clock, sync

from memmesh.integrations.background import BackgroundNode
from memmesh.integrations.mcp import TOOLS
from memmesh.storage import MAX_FIELD, MAX_TEXT, Replica

Call = Callable[..., Awaitable[Any]]


def serve(data: Path, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "memmesh.integrations.mcp", "--data", str(data), "--embedder", "hashing",
              *args],
        env={"HF_HUB_OFFLINE": "1"},
    )


def with_client(params: StdioServerParameters, body: Callable[[Client, Call, Call],
                                                              Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(params) as client:
            async def call(name: str, **arguments: Any) -> Any:
                result = await client.call_tool(name, arguments)
                assert not result.is_error, result.content
                return result.structured_content

            async def fails(name: str, **arguments: Any) -> str:
                result = await client.call_tool(name, arguments)
                assert result.is_error, result.structured_content
                return " ".join(getattr(c, "text", "") for c in result.content)

            await asyncio.wait_for(body(client, call, fails), timeout=120)

    asyncio.run(main())


def _branches(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema merged with its non-null ``anyOf`` arm (``X | None``)."""
    merged = dict(prop)
    for arm in prop.get("anyOf", ()):
        if arm.get("type") != "null":
            merged.update(arm)
    return merged


def test_the_nine_tools_are_listed_with_schemas(tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == sorted(TOOLS)
        for tool in listed.tools:
            assert tool.description, tool.name
            for name, prop in tool.input_schema["properties"].items():
                assert prop.get("description"), f"{tool.name}.{name} has no description"
        schema = {t.name: {n: _branches(p) for n, p in t.input_schema["properties"].items()}
                  for t in listed.tools}
        add, search, update = (schema["add_memory"], schema["search_memories"],
                               schema["update_memory"])
        for params in (add, update):
            assert (params["confidence"]["minimum"], params["confidence"]["maximum"]) == (0, 1)
            assert params["text"]["maxLength"] == MAX_TEXT and params["text"]["minLength"] == 1
            assert params["role"]["type"] == "string"
        assert (search["k"]["minimum"], search["k"]["maximum"]) == (1, 100)
        assert search["k"]["type"] == "integer"
        assert add["ttl_seconds"]["exclusiveMinimum"] == 0
        assert add["run_id"]["type"] == "string" and add["run_id"]["maxLength"] == MAX_FIELD
        assert add["priority"]["type"] == "boolean"
        assert schema["get_memory"]["memory_id"]["maxLength"] == MAX_FIELD
        for tool in ("add_memory", "search_memories", "get_memory", "update_memory",
                     "list_conflicts", "resolve_conflict"):
            assert schema[tool]["detail"]["type"] == "boolean", tool

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)


def test_out_of_range_arguments_are_refused_by_the_schema_with_a_clear_message(
        tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        for tool, arguments, field, complaint in (
                ("search_memories", {"query": "x", "k": 0}, "k", "greater than or equal to 1"),
                ("search_memories", {"query": "x", "k": 101}, "k", "less than or equal to 100"),
                ("add_memory", {"text": "x", "confidence": 7}, "confidence",
                 "less than or equal to 1"),
                ("add_memory", {"text": "x", "ttl_seconds": 0}, "ttl_seconds",
                 "greater than 0"),
                ("add_memory", {"text": ""}, "text", "at least 1 character"),
                ("update_memory", {"memory_id": "m", "text": "y", "confidence": -0.5},
                 "confidence", "greater than or equal to 0")):
            message = await fails(tool, **arguments)
            assert field in message and complaint in message, message
            assert "Traceback" not in message

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:
        assert replica.list() == []


def test_results_are_concise_unless_detail_is_asked(tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        added = await call("add_memory", text="alice prefers dark mode in the editor")
        assert added == {"id": added["id"], "user_id": "alice", "agent_id": "a1",
                         "text": "alice prefers dark mode in the editor",
                         "conflicted": False}
        (hit,) = (await call("search_memories", query="dark mode editor"))["results"]
        assert set(hit) == {"id", "user_id", "agent_id", "text", "conflicted", "score"}
        assert hit["score"] > 0
        full = await call("get_memory", memory_id=added["id"], detail=True)
        (version,) = full["versions"]
        assert (version["actor"], version["confidence"]) == ("a1", 1.0)
        assert version["timestamp"].endswith("+00:00") and "replica" in version
        assert full["created_at"] == version["timestamp"]
        (detailed,) = (await call("search_memories", query="dark mode", detail=True))["results"]
        assert detailed["versions"] == full["versions"] and "score" in detailed

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--agent-id", "a1",
                      "--no-node"), body)


def test_role_priority_and_confidence_are_set_and_update_keeps_the_role(
        tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        added = await call("add_memory", text="ship on friday", role="lead", priority=True,
                           confidence=0.8, detail=True)
        assert added["priority"] is True
        assert (added["versions"][0]["role"], added["versions"][0]["confidence"]) == \
            ("lead", 0.8)
        kept = await call("update_memory", memory_id=added["id"], text="ship on monday",
                          detail=True)
        assert (kept["versions"][0]["role"], kept["versions"][0]["confidence"]) == \
            ("lead", 0.8)
        changed = await call("update_memory", memory_id=added["id"], text="ship on tuesday",
                             role="worker", confidence=0.3, detail=True)
        assert (changed["versions"][0]["role"], changed["versions"][0]["confidence"]) == \
            ("worker", 0.3)

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)


def test_importance_is_set_and_kept_and_deletes_record_the_agent_and_its_role(
        tmp_path: Path) -> None:
    ids: list[str] = []

    async def body(client: Client, call: Call, fails: Call) -> None:
        added = await call("add_memory", text="the deploy key rotates monthly",
                           importance=0.9, detail=True)
        assert added["versions"][0]["importance"] == 0.9
        kept = await call("update_memory", memory_id=added["id"],
                          text="the deploy key rotates weekly", detail=True)
        assert kept["versions"][0]["importance"] == 0.9
        assert "importance" in await fails("add_memory", text="x", importance=1.5)
        other = (await call("add_memory", text="lunch is at noon"))["id"]
        assert (await call("delete_memory", memory_id=added["id"], role="lead"))["deleted"]
        assert (await call("forget_memory", memory_id=other, role="lead"))["forgotten"]
        ids.extend((added["id"], other))

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--agent-id", "a1",
                      "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:
        deleted, forgotten = (replica.history(memory_id)[-1] for memory_id in ids)
        assert (deleted.op, deleted.actor, deleted.role) == ("DELETE", "a1", "lead")
        assert (forgotten.op, forgotten.actor, forgotten.role) == ("FORGET", "a1", "lead")


def test_memory_lifecycle_through_the_tools(tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        added = await call("add_memory", text="alice prefers dark mode in the editor",
                           metadata={"source": "chat"}, detail=True)
        memory_id = added["id"]
        assert (added["user_id"], added["agent_id"]) == ("alice", "a1")
        assert added["versions"][0]["actor"] == "a1"
        other = (await call("add_memory", text="alice is allergic to peanuts"))["id"]
        hits = (await call("search_memories", query="dark mode editor", k=2))["results"]
        assert hits[0]["id"] == memory_id and hits[0]["score"] > hits[1]["score"]
        assert (await call("get_memory", memory_id=memory_id))["text"].endswith("editor")
        updated = await call("update_memory", memory_id=memory_id,
                             text="alice switched to light mode")
        assert updated["text"] == "alice switched to light mode"
        events = (await call("memory_history", memory_id=memory_id))["events"]
        assert [e["op"] for e in events] == ["ADD", "UPDATE"]
        assert (await call("delete_memory", memory_id=memory_id))["deleted"] is True
        assert "no memory" in await fails("get_memory", memory_id=memory_id)
        assert (await call("forget_memory", memory_id=other))["forgotten"] is True
        assert (await call("search_memories", query="peanuts"))["results"] == []

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--agent-id", "a1",
                      "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:  # the writes are durable on disk
        assert replica.list(user_id="alice") == []


def test_bad_arguments_are_tool_errors_that_change_nothing(tmp_path: Path) -> None:
    async def body(client: Client, call: Call, fails: Call) -> None:
        assert await fails("add_memory", text="x", ttl_seconds=-1)
        assert await fails("add_memory", text="x", confidence=7)
        assert await fails("search_memories", query="x", k=0)
        assert await fails("update_memory", memory_id="nope", text="y")
        assert (await call("search_memories", query="x"))["results"] == []

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:
        assert replica.list() == []


def test_tools_see_only_the_configured_scope(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "d") as replica:
        bobs = replica.add("bob's bank pin is 1234", user_id="bob")

    async def body(client: Client, call: Call, fails: Call) -> None:
        for tool in ("get_memory", "memory_history", "delete_memory", "forget_memory"):
            assert "no memory" in await fails(tool, memory_id=bobs)
        assert "no memory" in await fails("update_memory", memory_id=bobs, text="mine now")
        assert (await call("search_memories", query="bank pin"))["results"] == []

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:
        assert replica.get(bobs).text == "bob's bank pin is 1234"


def test_an_agent_pinned_server_reads_its_users_and_apps_facts_read_only(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "d") as replica:
        user_fact = replica.add("alice speaks French", user_id="alice", app_id="zylos")
        user_only = replica.add("alice lives in Lyon", user_id="alice")
        app_fact = replica.add("zylos invoices in EUR", app_id="zylos")
        own = replica.add("alice's billing plan is pro", app_id="zylos", user_id="alice",
                          agent_id="billing")
        others = [replica.add("alice speaks French to support", app_id="zylos",
                              user_id="alice", agent_id="support"),
                  replica.add("bob speaks French", app_id="zylos", user_id="bob")]

    async def body(client: Client, call: Call, fails: Call) -> None:
        for memory_id in (user_fact, user_only, app_fact, own):
            assert (await call("get_memory", memory_id=memory_id))["id"] == memory_id
            assert (await call("memory_history", memory_id=memory_id))["events"]
        found = [r["id"] for r in (await call("search_memories", query="speaks French",
                                              k=10))["results"]]
        assert user_fact in found and not set(others) & set(found)
        found = [r["id"] for r in (await call("search_memories", query="invoices EUR",
                                              k=10))["results"]]
        assert app_fact in found
        for memory_id in others:
            assert "no memory" in await fails("get_memory", memory_id=memory_id)
        assert "read-only" in await fails("update_memory", memory_id=user_fact, text="x")
        assert "read-only" in await fails("delete_memory", memory_id=app_fact)
        assert "read-only" in await fails("forget_memory", memory_id=user_only)
        assert (await call("delete_memory", memory_id=own))["deleted"]

    with_client(serve(tmp_path / "d", "--app-id", "zylos", "--user-id", "alice",
                      "--agent-id", "billing", "--no-node"), body)
    with Replica.open(tmp_path / "d") as replica:
        assert replica.get(user_fact).text == "alice speaks French"  # type: ignore[union-attr]
        assert replica.get(app_fact) is not None and replica.get(own) is None


def test_conflicts_are_listed_and_resolved(tmp_path: Path) -> None:
    clock = Clock()
    with Replica.open(tmp_path / "d", clock=clock) as a, \
            Replica.open(tmp_path / "peer", clock=clock) as b:
        memory_id = a.add("release on friday", user_id="alice", actor="planner")
        sync(a, b)
        a.update(memory_id, "release on monday", actor="planner")
        b.update(memory_id, "release on tuesday", actor="qa")
        sync(a, b)

    async def body(client: Client, call: Call, fails: Call) -> None:
        (conflict,) = (await call("list_conflicts"))["conflicts"]
        assert conflict["id"] == memory_id and conflict["text"] is None
        texts = {v["text"]: v["version_id"] for v in conflict["versions"]}
        assert set(texts) == {"release on monday", "release on tuesday"}
        assert await fails("resolve_conflict", memory_id=memory_id)  # neither given
        resolved = await call("resolve_conflict", memory_id=memory_id,
                              pick_version_id=texts["release on tuesday"],
                              rationale="qa has the later plan")
        assert resolved["text"] == "release on tuesday" and not resolved["conflicted"]
        assert (await call("list_conflicts"))["conflicts"] == []
        ops = [e["op"] for e in (await call("memory_history", memory_id=memory_id))["events"]]
        assert ops[-1] == "RESOLVE"
        assert "not conflicted" in await fails("resolve_conflict", memory_id=memory_id,
                                               text="again")

    with_client(serve(tmp_path / "d", "--user-id", "alice", "--no-node"), body)


def test_writes_reach_a_peer_through_the_servers_node(tmp_path: Path) -> None:
    """An MCP client's memory is replicated: the server's node pushes it to a peer."""
    with Replica.open(tmp_path / "peer") as peer, \
            BackgroundNode(peer, insecure=True, mdns=False, interval=0.2) as node:

        async def body(client: Client, call: Call, fails: Call) -> None:
            memory_id = (await call("add_memory", text="the deploy key rotates monthly",
                                    policy="lww"))["id"]
            for _ in range(600):
                if peer.get(memory_id) is not None:
                    break
                await asyncio.sleep(0.1)
            record = peer.get(memory_id)
            assert record is not None and record.user_id == "alice"
            assert record.text == "the deploy key rotates monthly"

        with_client(serve(tmp_path / "d", "--user-id", "alice", "--insecure", "--no-mdns",
                          "--seed", f"127.0.0.1:{node.port}"), body)

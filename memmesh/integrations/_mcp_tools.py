"""The nine MCP memory tools of ``memmesh mcp`` (``mcp.TOOLS``): parameter schemas, results.

Every parameter is ``Annotated`` with a pydantic ``Field`` (description, range, length
bound matching storage's own limits), so the SDK's ``MCPServer`` publishes it in the
tool's JSON Schema and refuses an out-of-range argument with a validation message before
the tool runs, as the MCP tools spec asks of servers that declare an ``inputSchema``.
Results are concise by default (``_records.concise_json``: text, scope, conflicted flag,
and the score of a hit); ``detail=True`` returns ``_records.record_json``, the shape the
``memmesh`` command prints with ``--json``. Imported only when a server is built: it
needs the optional ``mcp`` extra (and the pydantic it brings).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from memmesh.crdt import MemmeshError
from memmesh.integrations._records import concise_json, event_json, record_json, version_id
from memmesh.integrations.aio import AsyncMemory
from memmesh.storage import MAX_FIELD, MAX_TEXT, SCOPE_TIERS, MemoryRecord, Replica

__all__ = ["INSTRUCTIONS", "MAX_K", "build_server", "merge_hits"]

MAX_K = 100
MAX_TTL_SECONDS = 1e12  # storage refuses ttl >= 1e12 s

INSTRUCTIONS = """Long-term memory shared with the other agents of this user, replicated \
peer to peer. Search before answering questions about the user or the project; add a \
memory for each durable fact, preference or decision (one fact per memory); update a \
memory rather than adding a contradicting one. A memory edited concurrently by two \
agents shows several versions ("conflicted"): list_conflicts and resolve_conflict settle \
them. forget_memory erases a memory everywhere (use it when asked to forget). Results \
are brief; pass detail=true for every version with its author, role, confidence and \
times."""

# -- parameter types: one definition per idea, shared by every tool that takes it --------

MemoryId = Annotated[str, Field(
    description="the memory's id, as returned by add_memory, search_memories or "
                "list_conflicts", min_length=1, max_length=MAX_FIELD)]
Text = Annotated[str, Field(
    description="the memory's text: one fact, preference or decision",
    min_length=1, max_length=MAX_TEXT)]
Metadata = Annotated[dict[str, Any] | None, Field(
    description="plain JSON data kept with this version (source, tags...); on update, "
                "omitted keeps the metadata of the version replaced")]
Role = Annotated[str | None, Field(
    description="the writer's role (e.g. lead, worker), which role-priority resolvers "
                "rank; on update, omitted keeps the role of the version replaced",
    min_length=1, max_length=MAX_FIELD)]
Importance = Annotated[float | None, Field(
    description="how much the memory matters, from 0 to 1: conflicts at or above the "
                "importance threshold go to the LLM arbiter, below it to cheap "
                "resolvers only (omitted: none; on update, keeps that of the version "
                "replaced)", ge=0.0, le=1.0, allow_inf_nan=False)]
ActorRole = Annotated[str | None, Field(
    description="the role of the agent doing this (e.g. lead, worker), recorded with "
                "the event in the memory's history", min_length=1, max_length=MAX_FIELD)]
Detail = Annotated[bool, Field(
    description="false (default): text, scope and conflicted flag; true: the full "
                "record, every version with actor, role, confidence, replica and "
                "ISO-8601 times")]


def _confidence(default_doc: str) -> Any:
    return Field(description=f"how sure the writer is, from 0 to 1 ({default_doc})",
                 ge=0.0, le=1.0, allow_inf_nan=False)


def merge_hits(first: list[Any], second: list[Any], k: int) -> list[Any]:
    """The ``k`` best of two hit lists, each memory once (its best hit); on equal score
    the most specific tier first, as a view search orders them."""
    best: dict[str, Any] = {}
    for hit in (*first, *second):
        if hit.id not in best or hit.score > best[hit.id].score:
            best[hit.id] = hit
    tiers = (*SCOPE_TIERS, None)
    return sorted(best.values(), key=lambda h: (-h.score, tiers.index(h.scope_tier)))[:k]


def build_server(replica: Replica, *, app_id: str | None = None, user_id: str | None = None,
                 agent_id: str | None = None, index: Any = None, embedder: Any = None,
                 node: Any = None, actor: str | None = None,
                 name: str = "memmesh") -> MCPServer:
    """See :func:`memmesh.integrations.mcp.build_server`."""
    scope = {k: v for k, v in (("app_id", app_id), ("user_id", user_id),
                               ("agent_id", agent_id)) if v is not None}
    who = actor or agent_id or "mcp"
    memory = AsyncMemory(replica, index=index, embedder=embedder, node=node)
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS)

    # Reads see the pinned scope (any run below it) and, through a view, the tiers above
    # it: an agent's server sees its user's and its app's facts. Writes stay in scope.
    view = memory.view(**scope) if scope else None

    def in_scope(record: MemoryRecord) -> bool:
        return all(getattr(record, k) == v for k, v in scope.items())

    def shown(record: MemoryRecord, detail: bool) -> dict[str, Any]:
        return record_json(record) if detail else concise_json(record)

    async def scoped(memory_id: str, *, write: bool = False) -> MemoryRecord:
        record = await memory.get(memory_id)
        if record is None or not (in_scope(record) or (
                view is not None and view.view.visible(record))):
            raise ToolError(f"no memory {memory_id!r} in this scope")
        assert isinstance(record, MemoryRecord)
        if write and not in_scope(record):
            raise ToolError(f"memory {memory_id!r} is a {record.scope_tier}-level memory "
                            f"shared with this scope: read-only here")
        return record

    async def guarded(coro: Any) -> Any:
        try:
            return await coro
        except MemmeshError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    @server.tool()
    async def add_memory(
            text: Text, metadata: Metadata = None,
            confidence: Annotated[float, _confidence("default 1")] = 1.0,
            ttl_seconds: Annotated[float | None, Field(
                description="seconds until the memory expires on every replica "
                            "(omitted: never)", gt=0, lt=MAX_TTL_SECONDS,
                allow_inf_nan=False)] = None,
            policy: Annotated[Literal["mv", "lww"], Field(
                description='"mv" keeps concurrent edits side by side for resolution, '
                            '"lww" lets the newest edit win')] = "mv",
            tier: Annotated[Literal["shared", "private"] | None, Field(
                description='"private" never leaves this machine (default "shared", '
                            'or "private" for a run-scoped memory)')] = None,
            run_id: Annotated[str | None, Field(
                description="scope the memory to one run of the agent",
                min_length=1, max_length=MAX_FIELD)] = None,
            role: Role = None,
            priority: Annotated[bool, Field(
                description="push the memory to peers before others (an urgent "
                            "fact, e.g. a user's correction)")] = False,
            importance: Importance = None,
            detail: Detail = False) -> dict[str, Any]:
        """Store one durable fact, preference or decision; returns the new memory."""
        memory_id = await guarded(memory.add(
            text, metadata=metadata, confidence=confidence, ttl=ttl_seconds, policy=policy,
            tier=tier, run_id=run_id, role=role, priority=priority, actor=who,
            importance=importance, **scope))
        return shown(await scoped(memory_id), detail)

    @server.tool()
    async def search_memories(
            query: Annotated[str, Field(description="what to look for, in plain words",
                                        min_length=1, max_length=MAX_TEXT)],
            k: Annotated[int, Field(description="how many memories at most",
                                    ge=1, le=MAX_K)] = 5,
            detail: Detail = False) -> dict[str, Any]:
        """The k memories most relevant to the query (by meaning, then recency,
        confidence and who wrote them), best first, each with its score; includes the
        user-level and app-level memories shared with this agent."""
        hits = await guarded(memory.search(query, k, **scope))
        if view is not None:
            hits = merge_hits(hits, await guarded(view.search(query, k)), k)
        if detail:
            return {"results": [{**record_json(h.record), "score": round(h.score, 6),
                                 "matched_text": h.text} for h in hits]}
        return {"results": [{**concise_json(h.record), "score": round(h.score, 6)}
                            for h in hits]}

    @server.tool()
    async def get_memory(memory_id: MemoryId, detail: Detail = False) -> dict[str, Any]:
        """One memory (with detail: all its standing versions)."""
        return shown(await scoped(memory_id), detail)

    @server.tool()
    async def update_memory(
            memory_id: MemoryId, text: Text,
            confidence: Annotated[float | None, _confidence(
                "omitted keeps that of the version replaced")] = None,
            metadata: Metadata = None, role: Role = None, importance: Importance = None,
            detail: Detail = False) -> dict[str, Any]:
        """Replace a memory's text (supersedes every version this replica has seen)."""
        await scoped(memory_id, write=True)
        await guarded(memory.update(memory_id, text, actor=who, confidence=confidence,
                                    metadata=metadata, role=role, importance=importance))
        return shown(await scoped(memory_id), detail)

    @server.tool()
    async def delete_memory(memory_id: MemoryId, role: ActorRole = None) -> dict[str, Any]:
        """Delete a memory (a concurrent edit elsewhere survives; history is kept)."""
        await scoped(memory_id, write=True)
        return {"id": memory_id,
                "deleted": await guarded(memory.delete(memory_id, actor=who, role=role))}

    @server.tool()
    async def forget_memory(memory_id: MemoryId, role: ActorRole = None) -> dict[str, Any]:
        """Erase a memory and its history on every replica (wins over concurrent edits)."""
        await scoped(memory_id, write=True)
        return {"id": memory_id,
                "forgotten": await guarded(memory.forget(memory_id, actor=who, role=role))}

    @server.tool()
    async def memory_history(memory_id: MemoryId) -> dict[str, Any]:
        """Who changed a memory, when, from which replica: its events, oldest first."""
        await scoped(memory_id)
        events = await guarded(memory.history(memory_id))
        return {"id": memory_id, "events": [event_json(e) for e in events]}

    @server.tool()
    async def list_conflicts(detail: Annotated[bool, Field(
            description="true (default): every standing version with its version_id "
                        "(what resolve_conflict's pick_version_id takes), actor, role, "
                        "confidence and times; false: the versions' texts only")] = True,
                             ) -> dict[str, Any]:
        """Memories that agents edited concurrently, with every standing version."""
        records = await guarded(memory.conflicts(**scope))
        return {"conflicts": [shown(r, detail) for r in records]}

    @server.tool()
    async def resolve_conflict(
            memory_id: MemoryId,
            text: Annotated[str | None, Field(
                description="a merged text replacing every listed version (or give "
                            "pick_version_id)", min_length=1, max_length=MAX_TEXT)] = None,
            pick_version_id: Annotated[str | None, Field(
                description="the version_id (from list_conflicts) of the version to keep "
                            "(or give text)", min_length=1, max_length=MAX_FIELD)] = None,
            rationale: Annotated[str | None, Field(
                description="why, kept in the resolution's metadata",
                max_length=MAX_TEXT)] = None,
            detail: Detail = False) -> dict[str, Any]:
        """Settle a conflicted memory: keep one version (pick_version_id, from
        list_conflicts) or write a merged text. The resolution supersedes exactly the
        versions listed now; a version written meanwhile elsewhere stays."""
        record = await scoped(memory_id, write=True)
        if not record.conflicted:
            raise ToolError(f"memory {memory_id!r} is not conflicted")
        if (text is None) == (pick_version_id is None):
            raise ToolError("give exactly one of text and pick_version_id")
        if pick_version_id is not None:
            chosen = [v for v in record.versions if version_id(v.dot) == pick_version_id]
            if not chosen:
                raise ToolError(f"no standing version {pick_version_id!r}")
            text = chosen[0].text
        assert text is not None
        metadata = {"resolution": "pick" if pick_version_id else "merged"}
        if rationale:
            metadata["rationale"] = rationale
        await guarded(memory.resolve(memory_id, text, resolver="mcp",
                                     inputs=tuple(v.dot for v in record.versions),
                                     actor=who, metadata=metadata))
        return shown(await scoped(memory_id), detail)

    server.memmesh = memory  # type: ignore[attr-defined]
    return server

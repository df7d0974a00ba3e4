"""``memmesh mcp``: replicated memory as MCP tools over stdio (extra ``mcp``).

Any MCP client that starts this server gets nine memory tools backed by a local LMDB
replica and, with a cluster key (or ``--insecure``), a gossip node replicating every
write. The caller's ``app_id``/``user_id``/``agent_id`` are fixed at start-up, never
taken from tool arguments: every tool sees only that scope, and a memory outside it
answers exactly like a missing one. Run it as ``memmesh mcp`` or ``python -m
memmesh.integrations.mcp`` (same options); built on the official ``mcp`` SDK, with calls
through ``AsyncMemory`` so LMDB work and embeddings stay off the server's loop. Tools,
scoping and options: docs/mcp.md.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from memmesh.crdt import Dot, MemmeshError
from memmesh.integrations._options import (
    add_data_option,
    add_logging_options,
    add_node_options,
    add_scope_options,
    configure_logging,
    data_dir,
    error_line,
    load_cluster_key,
    seeds,
)
from memmesh.integrations.aio import AsyncMemory

if TYPE_CHECKING:  # the ``mcp`` SDK is an optional extra: imported when a server is built
    from mcp.server.mcpserver import MCPServer

    from memmesh.storage import Replica

__all__ = ["TOOLS", "MissingExtraError", "build_parser", "build_server", "event_json", "main",
           "record_json", "run"]

log = logging.getLogger("memmesh.mcp")

TOOLS = ("add_memory", "search_memories", "get_memory", "update_memory", "delete_memory",
         "forget_memory", "memory_history", "list_conflicts", "resolve_conflict")
SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")

INSTRUCTIONS = """Long-term memory shared with the other agents of this user, replicated \
peer to peer. Search before answering questions about the user or the project; add a \
memory for each durable fact, preference or decision (one fact per memory); update a \
memory rather than adding a contradicting one. A memory edited concurrently by two \
agents shows several versions ("conflicted"): list_conflicts and resolve_conflict settle \
them. forget_memory erases a memory everywhere (use it when asked to forget)."""


class MissingExtraError(MemmeshError):
    """The optional ``mcp`` extra is not installed."""


def _version_id(dot: Dot) -> str:
    return f"{dot.replica}:{dot.counter}"


def record_json(record: Any) -> dict[str, Any]:
    """A ``MemoryRecord`` as JSON for tool results (``text`` is None while conflicted)."""
    return {
        "id": record.id,
        **{name: getattr(record, name) for name in SCOPE_FIELDS},
        "text": None if record.conflicted else record.text,
        "conflicted": record.conflicted,
        "policy": record.policy,
        "tier": record.tier,
        "created_at_ms": record.created_at.wall_ms,
        "updated_at_ms": record.updated_at.wall_ms,
        "expires_at_ms": record.expires_at,
        "versions": [
            {"version_id": _version_id(v.dot), "text": v.text, "actor": v.actor,
             "replica": v.replica, "timestamp_ms": v.timestamp.wall_ms,
             "confidence": v.confidence, "metadata": _plain(v.metadata), "op": v.op}
            for v in record.versions
        ],
    }


def event_json(event: Any) -> dict[str, Any]:
    """A history ``Event`` as JSON."""
    return {"op": event.op, "actor": event.actor, "replica": event.replica,
            "timestamp_ms": event.timestamp.wall_ms, "text": event.text,
            "version_id": None if event.dot is None else _version_id(event.dot),
            "detail": _plain(event.detail)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def build_server(replica: Replica, *, app_id: str | None = None, user_id: str | None = None,
                 agent_id: str | None = None, index: Any = None, embedder: Any = None,
                 node: Any = None, actor: str | None = None,
                 name: str = "memmesh") -> MCPServer:
    """An MCP server whose tools work on ``replica`` within the given scope.

    ``index`` is a :class:`memmesh.semantic.SemanticIndex` over ``replica`` (built with
    ``embedder`` on the first search when None). ``node`` is the running
    ``BackgroundNode`` on ``replica``, if any (reachable as ``server.memmesh.node``);
    replication does not depend on passing it: a node on the same replica, in this
    process or another, pushes every write. ``actor`` is recorded on writes (default:
    the agent id, else "mcp"). The caller keeps ownership of ``replica`` and ``node``.
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    scope = {k: v for k, v in (("app_id", app_id), ("user_id", user_id),
                               ("agent_id", agent_id)) if v is not None}
    who = actor or agent_id or "mcp"
    memory = AsyncMemory(replica, index=index, embedder=embedder, node=node)
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS)

    def in_scope(record: Any) -> bool:
        return record is not None and all(getattr(record, k) == v for k, v in scope.items())

    async def scoped(memory_id: str) -> Any:
        record = await memory.get(memory_id)
        if not in_scope(record):
            raise ToolError(f"no memory {memory_id!r} in this scope")
        return record

    async def guarded(coro: Any) -> Any:
        try:
            return await coro
        except MemmeshError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    @server.tool()
    async def add_memory(text: str, metadata: dict[str, Any] | None = None,
                         confidence: float = 1.0, ttl_seconds: float | None = None,
                         policy: Literal["mv", "lww"] = "mv",
                         tier: Literal["shared", "private"] | None = None,
                         run_id: str | None = None) -> dict[str, Any]:
        """Store one durable fact, preference or decision; returns the new memory.

        policy "mv" keeps concurrent edits side by side for resolution, "lww" lets the
        newest edit win. tier "private" never leaves this machine. ttl_seconds makes the
        memory expire everywhere."""
        memory_id = await guarded(memory.add(
            text, metadata=metadata, confidence=confidence, ttl=ttl_seconds, policy=policy,
            tier=tier, run_id=run_id, actor=who, **scope))
        return record_json(await memory.get(memory_id))

    @server.tool()
    async def search_memories(query: str, k: int = 5) -> dict[str, Any]:
        """The k memories most relevant to the query (by meaning, then recency,
        confidence and who wrote them), best first."""
        if not 1 <= k <= 100:
            raise ToolError("k must be between 1 and 100")
        hits = await guarded(memory.search(query, k, **scope))
        return {"results": [{**record_json(h.record), "score": round(h.score, 6),
                             "matched_text": h.text} for h in hits]}

    @server.tool()
    async def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory with all its standing versions."""
        return record_json(await scoped(memory_id))

    @server.tool()
    async def update_memory(memory_id: str, text: str, confidence: float | None = None,
                            metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Replace a memory's text (supersedes every version this replica has seen)."""
        await scoped(memory_id)
        await guarded(memory.update(memory_id, text, actor=who, confidence=confidence,
                                    metadata=metadata))
        return record_json(await scoped(memory_id))

    @server.tool()
    async def delete_memory(memory_id: str) -> dict[str, Any]:
        """Delete a memory (a concurrent edit elsewhere survives; history is kept)."""
        await scoped(memory_id)
        return {"id": memory_id, "deleted": await guarded(memory.delete(memory_id))}

    @server.tool()
    async def forget_memory(memory_id: str) -> dict[str, Any]:
        """Erase a memory and its history on every replica (wins over concurrent edits)."""
        await scoped(memory_id)
        return {"id": memory_id, "forgotten": await guarded(memory.forget(memory_id))}

    @server.tool()
    async def memory_history(memory_id: str) -> dict[str, Any]:
        """Who changed a memory, when, from which replica: its events, oldest first."""
        await scoped(memory_id)
        events = await guarded(memory.history(memory_id))
        return {"id": memory_id, "events": [event_json(e) for e in events]}

    @server.tool()
    async def list_conflicts() -> dict[str, Any]:
        """Memories that agents edited concurrently, with every standing version."""
        records = await guarded(memory.conflicts(**scope))
        return {"conflicts": [record_json(r) for r in records]}

    @server.tool()
    async def resolve_conflict(memory_id: str, text: str | None = None,
                               pick_version_id: str | None = None,
                               rationale: str | None = None) -> dict[str, Any]:
        """Settle a conflicted memory: keep one version (pick_version_id, from
        list_conflicts) or write a merged text. The resolution supersedes exactly the
        versions listed now; a version written meanwhile elsewhere stays."""
        record = await scoped(memory_id)
        if not record.conflicted:
            raise ToolError(f"memory {memory_id!r} is not conflicted")
        if (text is None) == (pick_version_id is None):
            raise ToolError("give exactly one of text and pick_version_id")
        if pick_version_id is not None:
            chosen = [v for v in record.versions if _version_id(v.dot) == pick_version_id]
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
        return record_json(await scoped(memory_id))

    server.memmesh = memory  # type: ignore[attr-defined]
    return server


# -- command line -----------------------------------------------------------------------


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``memmesh mcp`` (pass a sub-parser to extend it in place). Needs
    no ``mcp`` SDK, so the ``memmesh`` CLI can list the sub-command without the extra."""
    p = parser or argparse.ArgumentParser(prog="memmesh mcp",
                                          description=__doc__.split("\n\n")[0])
    add_data_option(p)
    add_scope_options(p, ("app_id", "user_id", "agent_id"))
    p.add_argument("--actor", default=None, help="actor recorded on writes (default: agent id)")
    p.add_argument("--embedder", choices=("model", "hashing"), default="model",
                   help="search embeddings: the bundled model, or word hashing (no model)")
    p.add_argument("--no-node", action="store_true", help="no gossip node (local replica only)")
    add_node_options(p)
    return p




def run(args: argparse.Namespace) -> int:
    """Serve MCP over stdio until the client closes the pipe (stdout carries only MCP).

    ``args`` as parsed by :func:`build_parser`. Without the ``mcp`` SDK installed this
    raises :class:`MissingExtraError` before touching the data directory."""
    from memmesh.storage import Replica

    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("memmesh mcp needs the mcp SDK: pip install 'memmesh[mcp]'"
                                ) from exc
    data = data_dir(args)
    embedder = None
    if args.embedder == "hashing":
        from memmesh.semantic import HashingEmbedder

        embedder = HashingEmbedder()
    key = load_cluster_key(args)  # before anything: a bad key file is one line, rc 2
    seed_list = seeds(args)
    with contextlib.ExitStack() as stack:
        replica = stack.enter_context(Replica.open(data))
        node = None
        if not args.no_node:
            if key is None and not args.insecure:
                print("memmesh mcp: no cluster key (--key-file or MEMMESH_CLUSTER_KEY): "
                      "serving the local replica without a node", file=sys.stderr)
            elif _lock_for_node(stack, data):
                from memmesh.integrations.background import BackgroundNode

                node = BackgroundNode(replica, host=args.host, port=args.port,
                                      cluster_key=key, insecure=key is None,
                                      seeds=seed_list, mdns=not args.no_mdns,
                                      interval=args.interval).start()
                stack.callback(node.stop)
                line = node.call(lambda n: n.listening_line())
                print(f"memmesh mcp: {line}", file=sys.stderr)
        server = build_server(replica, app_id=args.app_id, user_id=args.user_id,
                              agent_id=args.agent_id, embedder=embedder, node=node,
                              actor=args.actor)
        server.run("stdio")
    return 0


def _lock_for_node(stack: contextlib.ExitStack, data: Any) -> bool:
    """Hold the directory's run lock for this server's node; False (and one line on
    stderr) when a node already runs there: it replicates this server's writes."""
    from memmesh.integrations._runlock import NodeRunningError, RunLock

    try:
        stack.enter_context(RunLock(data))
    except NodeRunningError as exc:
        print(f"memmesh mcp: a memmesh node (pid {exc.pid or 'unknown'}) already runs on "
              f"{data}: serving without a node of its own (that node replicates this "
              f"server's writes)", file=sys.stderr)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memmesh.integrations.mcp [options]``; see :func:`build_parser`."""
    parser = build_parser()
    add_logging_options(parser)
    args = parser.parse_args(argv)
    undo_logging = configure_logging(args)
    try:
        return run(args)
    except MemmeshError as exc:
        print(f"memmesh mcp: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        undo_logging()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

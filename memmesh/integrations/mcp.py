"""``memmesh mcp``: replicated memory as MCP tools over stdio (extra ``mcp``).

Any MCP client that starts this server gets nine memory tools backed by a local LMDB
replica and, with a cluster key (or ``--insecure``), a gossip node replicating every
write. The caller's ``app_id``/``user_id``/``agent_id`` are fixed at start-up, never
taken from tool arguments: every tool sees only that scope plus, for reading, the
memories shared with it from above (a ``ScopedView``: an agent's server reads its
user's and its app's facts, read-only), and a memory outside it answers exactly like a
missing one. Run it as ``memmesh mcp`` or ``python -m
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
from typing import TYPE_CHECKING, Any

from memmesh.crdt import MemmeshError
from memmesh.integrations._options import (
    add_data_option,
    add_node_options,
    add_scope_options,
    data_dir,
    member_replica_options,
    node_security,
    run_entry_point,
    seeds,
)

if TYPE_CHECKING:  # the ``mcp`` SDK is an optional extra: imported when a server is built
    from mcp.server.mcpserver import MCPServer

    from memmesh.storage import Replica

__all__ = ["TOOLS", "MissingExtraError", "build_parser", "build_server", "main", "run"]

log = logging.getLogger("memmesh.mcp")

TOOLS = ("add_memory", "search_memories", "get_memory", "update_memory", "delete_memory",
         "forget_memory", "memory_history", "list_conflicts", "resolve_conflict")


class MissingExtraError(MemmeshError):
    """The optional ``mcp`` extra is not installed."""


def build_server(replica: Replica, *, app_id: str | None = None, user_id: str | None = None,
                 agent_id: str | None = None, index: Any = None, embedder: Any = None,
                 node: Any = None, actor: str | None = None,
                 name: str = "memmesh") -> MCPServer:
    """An MCP server whose tools (:data:`TOOLS`) work on ``replica`` within the scope.

    ``index`` is a :class:`memmesh.semantic.SemanticIndex` over ``replica`` (built with
    ``embedder`` on the first search when None). ``node`` is the running
    ``BackgroundNode`` on ``replica``, if any (reachable as ``server.memmesh.node``);
    replication does not depend on passing it: a node on the same replica, in this
    process or another, pushes every write. ``actor`` is recorded on writes (default:
    the agent id, else "mcp"). The caller keeps ownership of ``replica`` and ``node``.
    Tool schemas and result shapes: :mod:`memmesh.integrations._mcp_tools`.
    """
    try:
        from memmesh.integrations import _mcp_tools
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("mcp", "pydantic"):
            raise
        raise MissingExtraError("the MCP server needs the mcp SDK: "
                                "pip install 'memmesh[mcp]'") from exc
    return _mcp_tools.build_server(replica, app_id=app_id, user_id=user_id,
                                   agent_id=agent_id, index=index, embedder=embedder,
                                   node=node, actor=actor, name=name)


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
    security = node_security(args)  # before anything: a bad key file is one line, rc 2
    seed_list = seeds(args)
    with contextlib.ExitStack() as stack:
        identity = security.get("identity")  # on credentials the replica is the member's
        replica = stack.enter_context(Replica.open(
            data, replica_id=None if identity is None else identity.replica_id,
            **member_replica_options(data, identity)))
        node = None
        if not args.no_node:
            if security.get("insecure") and not args.insecure:
                print("memmesh mcp: no cluster key (--key-file or MEMMESH_CLUSTER_KEY) and no "
                      "--credential: serving the local replica without a node",
                      file=sys.stderr)
            elif _lock_for_node(stack, data):
                from memmesh.integrations.background import BackgroundNode

                node = BackgroundNode(replica, host=args.host, port=args.port, **security,
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
    return run_entry_point("memmesh mcp", build_parser(), run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

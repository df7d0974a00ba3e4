"""One Zylos channel instance: a replica, a gossip node with an arbiter, and a tiny
JSON-lines command loop that ``run.py`` drives (``python instance.py NAME DATA_DIR``).

The instance is the agent ``NAME`` of the app ``zylos`` serving the user ``alice``: it
reads through its scoped view (``replica.view``: app, user, agent and session tiers at
once, docs/memory-model.md), so a user-level preference written by another channel is
part of what it sees. It is told of changes by a subscription on its view
(``BackgroundNode.subscribe``), not by polling, and discards its session's memories
with ``end_run`` when the session ends.

The node's resolver settles contradictions in project state: the version written by
the highest role wins (lead over worker), else the newest. The node calls it only on the
replica elected arbiter for that conflict, so the contradiction is resolved once.
"""

from __future__ import annotations

import json
import os
import queue
import sys
from typing import Any

from memmesh.integrations.background import BackgroundNode
from memmesh.semantic import LastWriterWins, RolePriority, chain
from memmesh.storage import ChangeEvent, MemoryRecord, Replica, ScopedView

#: The project-state arbiter: the lead's word wins, else the newest version.
RESOLVER = chain(RolePriority(["lead", "worker"]), LastWriterWins())
#: The app and the user every channel instance serves.
APP, USER = "zylos", "alice"


def texts(record: MemoryRecord) -> list[str]:
    """The standing versions' texts (a conflicted memory has several)."""
    return [v.text for v in record.versions if v.text is not None]


def serve(name: str, data: str) -> None:
    key = bytes.fromhex(os.environ["MEMMESH_CLUSTER_KEY"])
    node: BackgroundNode | None = None
    session: str | None = None  # the run id of the open session, if any
    changes: queue.Queue[ChangeEvent] = queue.Queue()  # what the subscription delivered
    with Replica.open(data) as replica:

        def view() -> ScopedView:
            """What this agent sees: the app's, alice's, its own and its session's."""
            return replica.view(app_id=APP, user_id=USER, agent_id=name, run_id=session)

        def run(op: str, args: dict[str, Any]) -> Any:
            nonlocal node, session
            if op == "start_node":
                node = BackgroundNode(replica, cluster_key=key, mdns=False, interval=0.5,
                                      seeds=[("127.0.0.1", p) for p in args["seeds"]],
                                      resolver=RESOLVER, resolver_interval=0.2,
                                      resolve_deadline_ms=2000, remember_peers=False)
                return node.start().port
            if op == "stop_node":
                assert node is not None
                node.stop()
                node = None
                return None
            if op == "peers":
                return [] if node is None else list(node.peers)
            if op == "add":
                return replica.add(args.pop("text"), **args)
            if op == "update":
                return replica.update(args.pop("id"), args.pop("text"), **args)
            if op == "get":  # on this replica at all, whatever the view
                record = replica.get(args["id"])
                return None if record is None else {"versions": texts(record)}
            if op == "recall":  # through the agent's view, most specific tier first
                return [[" | ".join(texts(r)), r.scope_tier] for r in view().list()]
            if op == "subscribe":  # changes of memories this agent's view shows
                assert node is not None
                node.subscribe(changes.put, where=view().visible, ops=set(args["ops"]))
                return None
            if op == "next_change":  # blocks until the subscription delivers one for id
                while True:
                    event = changes.get(timeout=args["timeout"])
                    if event.memory_id == args["id"]:
                        record = view().get(args["id"])
                        return {"op": event.op, "local": event.local,
                                "text": event.versions[0].text if event.versions else None,
                                "tier": None if record is None else record.scope_tier}
            if op == "start_session":
                session = args["run_id"]
                return None
            if op == "end_session":  # discard the session's memories (recorded as deletes)
                assert session is not None
                count = replica.end_run(session, actor=name)
                session = None
                return count
            if op == "history":
                return [{"op": e.op, "actor": e.actor, "replica": e.replica}
                        for e in replica.history(args["id"])]
            if op == "set_add":
                return replica.set_add(args.pop("key"), args.pop("element"), **args)
            if op == "set_remove":
                return replica.set_remove(args["key"], args["element"])
            if op == "set_members":
                return sorted(replica.set_members(args["key"]))
            if op == "whoami":
                return replica.replica_id
            if op == "digest":
                return replica.state_digest()
            raise ValueError(f"unknown op {op!r}")

        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                print(json.dumps({"result": None}), flush=True)
                break
            try:
                reply = {"result": run(op, command)}
            except Exception as exc:  # reported to the driver, which stops the demo
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
        if node is not None:
            node.stop()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])

"""One Zylos channel instance: a replica, a gossip node with an arbiter, and a tiny
JSON-lines command loop that ``run.py`` drives (``python instance.py NAME DATA_DIR``).

The node's resolver settles contradictions in project state: the version written by
the highest role wins (lead over worker), else the newest. The node calls it only on the
replica elected arbiter for that conflict, so the contradiction is resolved once.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from memmesh.integrations.background import BackgroundNode
from memmesh.semantic import LastWriterWins, RolePriority, chain
from memmesh.storage import Replica

#: The project-state arbiter: the lead's word wins, else the newest version.
RESOLVER = chain(RolePriority(["lead", "worker"]), LastWriterWins())


def serve(name: str, data: str) -> None:
    key = bytes.fromhex(os.environ["MEMMESH_CLUSTER_KEY"])
    node: BackgroundNode | None = None
    with Replica.open(data) as replica:

        def run(op: str, args: dict[str, Any]) -> Any:
            nonlocal node
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
            if op == "get":
                record = replica.get(args["id"])
                return None if record is None else {
                    "versions": [v.text for v in record.versions]}
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

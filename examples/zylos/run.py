"""The Zylos pattern: one assistant, three channel instances, three processes, one memory.

Three instances of an assistant (telegram, slack, web) run as three processes, each with
its own replica and gossip node (TLS, one cluster key). This script drives them through
the pattern memmesh was built for and prints what happened:

1. a user preference, written as LWW with ``priority=True``, is pushed at once and seen
   by the other two instances within a second;
2. project state is an MV memory: while the web instance is offline, the slack instance
   (role "lead") and the web instance (role "worker") change it; when web comes back,
   anti-entropy pulls the two versions together, the node's resolver (role priority,
   then last-writer-wins) settles the contradiction — once, on the elected arbiter —
   and every instance ends with the same text;
3. the task list is an add-wins OR-Set edited from all three instances;
4. session state (``run_id``) stays private to the instance that wrote it.

Run:  python examples/zylos/run.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from memmesh.gossip import new_cluster_key

INSTANCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance.py")
NAMES = ("telegram", "slack", "web")


class Instance:
    """One instance process, driven by JSON lines over its stdin/stdout."""

    def __init__(self, name: str, data: str, env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, INSTANCE, name, data], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"{self.name}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        self("quit")
        self.proc.wait(30)


def wait(what: str, check: Any, timeout: float = 30.0) -> float:
    """Seconds until ``check()`` holds (raises after ``timeout``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def main() -> int:
    env = {**os.environ, "MEMMESH_CLUSTER_KEY": new_cluster_key().hex()}
    with tempfile.TemporaryDirectory() as tmp:
        inst = {n: Instance(n, os.path.join(tmp, n), env) for n in NAMES}
        tg, slack, web = inst["telegram"], inst["slack"], inst["web"]
        try:
            ports = [tg("start_node", seeds=[])]
            ports.append(slack("start_node", seeds=ports))
            web("start_node", seeds=ports)
            wait("peers", lambda: all(len(i("peers")) == 2 for i in inst.values()))
            print("three instances connected: telegram, slack, web")

            # 1. preference: LWW, priority push
            pref = tg("add", text="Alice wants short answers, no emoji", user_id="alice",
                      policy="lww", priority=True, actor="telegram")
            seen = wait("preference", lambda: all(i("get", id=pref) for i in (slack, web)))
            print(f"1. preference written on telegram, visible on slack and web after "
                  f"{seen * 1000:.0f} ms: {slack('get', id=pref)['versions'][0]!r}")

            # 2. project state: MV, contradiction resolved by the arbiter
            plan = slack("add", text="launch on friday", app_id="zylos", actor="slack",
                         role="lead")
            wait("project state", lambda: web("get", id=plan) is not None)
            web("stop_node")
            slack("update", id=plan, text="launch on monday", actor="slack", role="lead")
            web("update", id=plan, text="launch on tuesday", actor="web", role="worker")
            print("2. web offline; slack (lead) says 'launch on monday', "
                  "web (worker) says 'launch on tuesday'")
            web("start_node", seeds=ports)

            def settled() -> bool:
                texts = [i("get", id=plan) for i in inst.values()]
                return all(t is not None and t["versions"] == ["launch on monday"]
                           for t in texts)

            took = wait("resolution", settled, timeout=60)
            names = {i("whoami"): n for n, i in inst.items()}
            resolves = [e for e in slack("history", id=plan) if e["op"] == "RESOLVE"]
            print(f"   web reconnected: anti-entropy merged both versions and the arbiter "
                  f"resolved them in {took:.1f} s; RESOLVE events: "
                  f"{[names[e['replica']] for e in resolves]}; every instance reads "
                  f"{tg('get', id=plan)['versions'][0]!r}")

            # 3. tasks: OR-Set
            tg("set_add", key="tasks:alice", element="book flights", user_id="alice")
            slack("set_add", key="tasks:alice", element="draft launch post", user_id="alice")
            web("set_add", key="tasks:alice", element="buy gift", user_id="alice")
            wait("tasks", lambda: len(tg("set_members", key="tasks:alice")) == 3)
            web("set_remove", key="tasks:alice", element="buy gift")
            wait("task removal", lambda: all(
                sorted(i("set_members", key="tasks:alice")) ==
                ["book flights", "draft launch post"] for i in inst.values()))
            print(f"3. tasks on every instance: {tg('set_members', key='tasks:alice')}")

            # 4. session state: private
            session = tg("add", text="telegram: user is typing a long message",
                         user_id="alice", run_id="tg-session-7", actor="telegram")
            marker = tg("add", text="telegram session ended", user_id="alice",
                        actor="telegram", priority=True)
            wait("marker", lambda: all(i("get", id=marker) for i in (slack, web)))
            print(f"4. session state on telegram: {tg('get', id=session)['versions']}; "
                  f"on slack: {slack('get', id=session)}, on web: {web('get', id=session)}")
            digests = {i("digest") for i in inst.values()}
            print(f"converged: {len(digests) == 1} (one state digest on all three)")
            return 0 if len(digests) == 1 and len(resolves) == 1 else 1
        finally:
            for i in inst.values():
                i.close()


if __name__ == "__main__":
    sys.exit(main())

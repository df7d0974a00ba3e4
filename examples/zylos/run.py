"""The Zylos pattern: one assistant, three channel instances, three processes, one memory.

Three instances of an assistant (telegram, slack, web) run as three processes, each with
its own replica and gossip node (TLS, one cluster key). Each is an agent of the app
"zylos" serving the user "alice" and reads through its scoped view (app, user, agent and
session tiers; docs/memory-model.md). This script drives them through the pattern
memmesh was built for and prints what happened:

1. a user preference, written on telegram as LWW with ``priority=True`` and
   ``sync="push"``, is pushed at once; slack and web are told by their subscriptions
   (``BackgroundNode.subscribe`` on their views), not by polling, and see it in their
   own agent views as a user-tier memory;
2. project state is an MV memory written with ``sync="pull"`` (it reaches the others by
   the anti-entropy rounds, not by a push of its own); while the web instance is
   offline, the slack instance (role "lead") and the web instance (role "worker")
   change it; when web comes back,
   anti-entropy pulls the two versions together, the node's resolver (role priority,
   then last-writer-wins) settles the contradiction — once, on the elected arbiter —
   and every instance ends with the same text;
3. the task list is an add-wins OR-Set edited from all three instances;
4. session state (``run_id``) stays private to the instance that wrote it and is
   discarded with ``end_run`` when the session ends.

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
#: Each channel agent's own note (app "zylos", agent NAME): on every replica, in one view.
NOTES = {"telegram": "telegram: keep messages under 4096 characters",
         "slack": "slack: reply in the thread", "web": "web: markdown renders"}


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


def recall(instance: Instance) -> list[tuple[str, str]]:
    """(text, tier) of every memory the instance's agent view shows."""
    return [(text, tier) for text, tier in instance("recall")]


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
            for n, i in inst.items():  # each channel agent's own note: the agent tier
                i("add", text=NOTES[n], app_id="zylos", agent_id=n, actor=n)

            # 1. preference: LWW, priority push; slack and web are told by subscriptions
            for i in (slack, web):
                i("subscribe", ops=["ADD", "UPDATE"])
            start = time.monotonic()
            pref = tg("add", text="Alice wants short answers, no emoji", user_id="alice",
                      policy="lww", priority=True, sync="push", actor="telegram")
            arrived = {n: inst[n]("next_change", id=pref, timeout=30) for n in ("slack", "web")}
            seen = time.monotonic() - start
            print(f"1. preference written on telegram, visible on slack and web after "
                  f"{seen * 1000:.0f} ms: {arrived['slack']['text']!r}")
            for n, change in arrived.items():
                print(f"   {n}'s subscription: {change['op']} "
                      f"{'from a peer' if not change['local'] else 'local'}, in its agent "
                      f"view as a {change['tier']}-tier memory")

            # 2. project state: MV, contradiction resolved by the arbiter
            plan = slack("add", text="launch on friday", app_id="zylos", actor="slack",
                         role="lead", sync="pull")  # remembered: slack's updates pull too
            pulled = wait("project state", lambda: web("get", id=plan) is not None)
            print(f"2. project state written on slack with sync='pull' (no push: the "
                  f"anti-entropy rounds carry it): on web after {pulled:.1f} s")
            web("stop_node")
            slack("update", id=plan, text="launch on monday", actor="slack", role="lead")
            web("update", id=plan, text="launch on tuesday", actor="web", role="worker")
            print("   web offline; slack (lead) says 'launch on monday', "
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

            # 4. session state: private, discarded when the session ends
            tg("start_session", run_id="tg-session-7")
            session = tg("add", text="telegram: user is typing a long message",
                         user_id="alice", agent_id="telegram", run_id="tg-session-7",
                         actor="telegram")
            marker = tg("add", text="telegram session ended", user_id="alice",
                        actor="telegram", priority=True)
            wait("marker", lambda: all(i("get", id=marker) for i in (slack, web)))
            print(f"4. session state on telegram: {tg('get', id=session)['versions']}; "
                  f"on slack: {slack('get', id=session)}, on web: {web('get', id=session)}")
            print(f"   telegram's view during the session: {recall(tg)[:2]}")
            ended = tg("end_session")
            print(f"   end_run discarded {ended} session memory; on telegram: "
                  f"{tg('get', id=session)}")
            print("   what each agent sees through its view (most specific tier first; the "
                  "other channels' notes are on its replica but outside its view):")
            for n, i in inst.items():
                print(f"   {n}: {recall(i)}")
            digests = {i("digest") for i in inst.values()}
            print(f"converged: {len(digests) == 1} (one state digest on all three)")
            return 0 if len(digests) == 1 and len(resolves) == 1 else 1
        finally:
            for i in inst.values():
                i.close()


if __name__ == "__main__":
    sys.exit(main())

"""Two LangGraph agents in two processes sharing long-term memory, with no database.

Each process owns a memmesh replica (an LMDB directory) and a gossip node; the
LangGraph store of each graph is a ``MemmeshStore`` over its own replica. The
"profiler" graph stores what it learns about a user; the "assistant" graph, in another
process, finds those memories by meaning a moment later and writes back a note that the
profiler then reads. Nothing but the two processes runs: no Postgres, no Redis, no server.

Run:  python examples/langgraph_two_agents.py            (spawns both agents)
      python examples/langgraph_two_agents.py --hashing  (no model: word hashing)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from memmesh.gossip import new_cluster_key
from memmesh.integrations.background import BackgroundNode
from memmesh.integrations.langgraph import MemmeshStore
from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

USER = ("users", "alice", "memories")


class State(TypedDict, total=False):
    message: str
    answer: str


def profiler_graph(store: BaseStore) -> Any:
    def remember(state: State, *, store: BaseStore) -> State:
        key = f"fact-{abs(hash(state['message'])) % 10**8}"
        store.put(USER, key, {"text": state["message"], "source": "profiler"})
        return {"answer": f"stored {key}"}

    graph = StateGraph(State)
    graph.add_node("remember", remember)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", END)
    return graph.compile(store=store)


def assistant_graph(store: BaseStore) -> Any:
    def recall(state: State, *, store: BaseStore) -> State:
        hits = store.search(USER, query=state["message"], limit=1)
        if not hits:
            return {"answer": ""}
        answer = f"I remember: {hits[0].value['text']}"
        store.put(("users", "alice", "notes"), "assistant", {"text": answer})
        return {"answer": answer}

    graph = StateGraph(State)
    graph.add_node("recall", recall)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", END)
    return graph.compile(store=store)


def open_store(data: Path, hashing: bool) -> tuple[Replica, MemmeshStore]:
    replica = Replica.open(data)
    index = SemanticIndex(replica, HashingEmbedder() if hashing else None)
    return replica, MemmeshStore(replica, index=index, fields=["text"], actor=data.name)


def run_agent(role: str, data: Path, seed: str | None, hashing: bool) -> int:
    key = bytes.fromhex(os.environ["MEMMESH_CLUSTER_KEY"])
    replica, store = open_store(data, hashing)
    seeds = [("127.0.0.1", int(seed))] if seed else []
    with replica, BackgroundNode(replica, cluster_key=key, seeds=seeds, mdns=False,
                                 interval=0.5) as node:
        print(f"PORT {node.port}", flush=True)
        deadline = time.monotonic() + 60
        if role == "profiler":
            graph = profiler_graph(store)
            for fact in ("Alice prefers dark mode in every editor",
                         "Alice is vegetarian"):
                print(f"[profiler] {graph.invoke({'message': fact})['answer']}", flush=True)
            while time.monotonic() < deadline:
                note = store.get(("users", "alice", "notes"), "assistant")
                if note is not None:
                    print(f"[profiler] read the assistant's note: {note.value['text']!r}",
                          flush=True)
                    return 0
                time.sleep(0.1)
        else:
            graph = assistant_graph(store)
            while time.monotonic() < deadline:
                answer = graph.invoke({"message": "what does alice prefer in her editor?"})
                if answer["answer"]:
                    print(f"[assistant] {answer['answer']}", flush=True)
                    time.sleep(1.0)  # let the note reach the profiler before leaving
                    return 0
                time.sleep(0.1)
    print(f"[{role}] timed out", flush=True)
    return 1


def launch(hashing: bool) -> int:
    env = {**os.environ, "MEMMESH_CLUSTER_KEY": new_cluster_key().hex(), "HF_HUB_OFFLINE": "1"}
    extra = ["--hashing"] if hashing else []
    with tempfile.TemporaryDirectory() as tmp:
        profiler = subprocess.Popen(
            [sys.executable, __file__, "--role", "profiler", "--data", f"{tmp}/profiler",
             *extra], env=env, stdout=subprocess.PIPE, text=True)
        assert profiler.stdout is not None
        port = profiler.stdout.readline().split()[1]
        assistant = subprocess.Popen(
            [sys.executable, __file__, "--role", "assistant", "--data", f"{tmp}/assistant",
             "--seed", port, *extra], env=env, stdout=subprocess.PIPE, text=True)
        assert assistant.stdout is not None
        out_a = assistant.stdout.read()
        out_p = profiler.stdout.read()
        codes = assistant.wait(), profiler.wait()
    for line in (out_p + out_a).splitlines():
        if not line.startswith("PORT"):
            print(line)
    return 0 if codes == (0, 0) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("profiler", "assistant"))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--seed", default=None, help="port of the other agent's node")
    parser.add_argument("--hashing", action="store_true",
                        help="word-hashing embedder instead of the bundled model")
    args = parser.parse_args()
    if args.role is None:
        sys.exit(launch(args.hashing))
    sys.exit(run_agent(args.role, args.data, args.seed, args.hashing))

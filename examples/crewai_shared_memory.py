"""Two processes of one crew share CrewAI memory through memmesh gossip, with no server.

The researcher (this process) keeps its crewai ``Memory`` in a memmesh replica and runs
a gossip node; it starts the writer, a second OS process with its own replica directory
whose node dials the researcher's as a seed on 127.0.0.1. The researcher remembers a
client's request; the writer recalls it as soon as gossip delivers it, and remembers a
note of its own, which the researcher recalls in turn.

Every remembered item gives its scope, categories and importance, so crewai needs no
LLM; ``consolidation_threshold=1.0`` keeps the demo offline (no merge suggestions), and
a word-hashing embedder stands in for crewai's (any embedder crewai is configured with
works: the storage keeps the vectors crewai computes).

Run:  python examples/crewai_shared_memory.py          (needs the ``crewai`` extra)
"""

from __future__ import annotations

import os

# crewai's first-run trace collection waits 5 s on every save; keep it off for the demo
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crewai.memory.unified_memory import Memory

from memmesh.gossip import new_cluster_key
from memmesh.integrations.background import BackgroundNode
from memmesh.integrations.crewai import MemmeshCrewStorage
from memmesh.semantic import HashingEmbedder

CREW_SCOPE = "/crew/launch"
KEY_ENV = "MEMMESH_DEMO_CLUSTER_KEY"
EMBEDDER = HashingEmbedder(dimension=128)


def embed(texts: list[str]) -> list[list[float]]:
    rows: list[list[float]] = EMBEDDER.embed(list(texts)).tolist()
    return rows


def crew_memory(storage: MemmeshCrewStorage) -> Memory:
    return Memory(storage=storage, embedder=embed, root_scope=CREW_SCOPE,
                  consolidation_threshold=1.0, exploration_budget=0)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("gossip did not deliver in time")
        time.sleep(0.05)
    return time.monotonic() - started


def writer(directory: Path, port: int) -> None:
    """The second process: dial the researcher, recall its memory, add a note."""
    key = bytes.fromhex(os.environ[KEY_ENV])
    storage = MemmeshCrewStorage.open(directory)
    node = BackgroundNode(storage.replica, cluster_key=key, mdns=False, interval=0.5,
                          seeds=[("127.0.0.1", port)]).start()
    memory = crew_memory(storage)
    try:
        waited = wait_until(lambda: storage.count(CREW_SCOPE) > 0)
        [match] = memory.recall("what language does the client want?", depth="shallow",
                                limit=1)
        print(f"writer (pid {os.getpid()}) recalled after {waited:.2f} s: "
              f"{match.record.content!r} in {match.record.scope}", flush=True)
        memory.remember("the draft report was sent to the client in french",
                        scope="/agent/writer", categories=["status"], importance=0.7)
        sys.stdin.read()  # stay until the researcher has our note (it closes our stdin)
    finally:  # the node first: Memory.close() closes the replica the storage opened
        node.stop()
        memory.close()


def researcher() -> None:
    key = new_cluster_key()
    with tempfile.TemporaryDirectory() as tmp:
        storage = MemmeshCrewStorage.open(Path(tmp) / "researcher")
        node = BackgroundNode(storage.replica, cluster_key=key, mdns=False,
                              interval=0.5).start()
        memory = crew_memory(storage)
        try:
            print(f"researcher (pid {os.getpid()}) listens on 127.0.0.1:{node.port}",
                  flush=True)
            memory.remember("the client wants the final report in french",
                            scope="/client", categories=["requirements"], importance=0.9)
            child = subprocess.Popen(
                [sys.executable, __file__, "--writer", str(Path(tmp) / "writer"),
                 str(node.port)],
                stdin=subprocess.PIPE, env={**os.environ, KEY_ENV: key.hex()}, text=True)
            try:
                wait_until(lambda: storage.count(f"{CREW_SCOPE}/agent/writer") > 0)
                [match] = memory.recall("was the report sent?", scope="/agent/writer",
                                        depth="shallow", limit=1)
                print(f"researcher recalled the writer's note: {match.record.content!r}",
                      flush=True)
                print("the crew's scopes:", memory.list_scopes(), flush=True)
            finally:
                assert child.stdin is not None
                child.stdin.close()  # tells the writer it may stop
                if child.wait(timeout=60) != 0:
                    raise SystemExit("the writer process failed")
        finally:
            node.stop()
            memory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writer", nargs=2, metavar=("DIR", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(Path(args.writer[0]), int(args.writer[1]))
    else:
        researcher()

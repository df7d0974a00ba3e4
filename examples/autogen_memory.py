"""Two AutoGen agents sharing one memory through memmesh, with no server.

Each agent owns a replica directory, a background gossip node (TLS, cluster key) and a
``MemmeshMemory`` scoped to user "alice"; agent B's node dials agent A's. A remembers a
preference and a JSON profile; B finds them moments later, and ``update_context`` puts
them in B's model context as one system message, exactly what an
``AssistantAgent(memory=[...])`` does before each model call. The memory's component
config (replica path, scope, embedder) is printed as AutoGen serialises it. Finally A
clears alice's memories: the delete replicates to B, and bob's memory stays.

Run:  python examples/autogen_memory.py            (bundled sentence-transformers model)
      python examples/autogen_memory.py --hashing  (no model: a word-hashing embedder)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import UserMessage

from memmesh.gossip import new_cluster_key
from memmesh.integrations.autogen import (
    HashingEmbedderConfig,
    MemmeshMemory,
    SentenceTransformerEmbedderConfig,
)
from memmesh.integrations.background import BackgroundNode
from memmesh.storage import Replica


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 30) -> float:
    """Seconds until ``condition()`` holds (gossip runs in the nodes' own threads)."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("replicas did not converge")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def main(hashing: bool) -> None:
    key = new_cluster_key()
    embedder = HashingEmbedderConfig() if hashing else SentenceTransformerEmbedderConfig()
    with tempfile.TemporaryDirectory() as tmp, \
            Replica.open(Path(tmp) / "agent-a") as replica_a, \
            Replica.open(Path(tmp) / "agent-b") as replica_b, \
            BackgroundNode(replica_a, cluster_key=key, mdns=False, interval=0.5) as a, \
            BackgroundNode(replica_b, cluster_key=key, mdns=False, interval=0.5,
                           seeds=[("127.0.0.1", a.port)]):
        memory_a = MemmeshMemory(replica_a, embedder=embedder, user_id="alice",
                                 agent_id="assistant", k=2)
        memory_b = MemmeshMemory(replica_b, embedder=embedder, user_id="alice",
                                 agent_id="assistant", k=2)
        print(f"agent A listens on 127.0.0.1:{a.port}; agent B dials it")

        await memory_a.add(MemoryContent(content="Alice prefers dark mode in every editor",
                                         mime_type=MemoryMimeType.TEXT,
                                         metadata={"source": "settings chat"}))
        await memory_a.add(MemoryContent(content={"user": "alice", "diet": "vegetarian"},
                                         mime_type=MemoryMimeType.JSON))
        bob = MemmeshMemory(replica_a, embedder=embedder, user_id="bob", agent_id="assistant")
        await bob.add(MemoryContent(content="Bob prefers light mode",
                                    mime_type=MemoryMimeType.TEXT))

        async def b_sees_both() -> bool:
            return len((await memory_b.query("alice", k=5)).results) == 2

        print(f"B sees A's memories after {await wait_for(b_sees_both):.2f} s")

        context = BufferedChatCompletionContext(buffer_size=10)
        await context.add_message(UserMessage(content="Which editor mode does Alice prefer?",
                                              source="user"))
        result = await memory_b.update_context(context)
        print("B's model context now ends with this system message:")
        print((await context.get_messages())[-1].content.strip())
        best = result.memories.results[0]
        print(f"best match: score {best.metadata['score']:.2f},"
              f" source {best.metadata['source']!r}, id {best.metadata['id'][:8]}...")

        config = memory_b.dump_component().config
        print("B's component config:", {k: config[k] for k in ("user_id", "agent_id", "k")},
              "embedder", config["embedder"]["kind"])

        await memory_a.clear()

        async def b_cleared() -> bool:
            return not (await memory_b.query("alice", k=5)).results

        await wait_for(b_cleared)
        kept = len(replica_b.list(user_id="bob"))
        print(f"after A's clear, B finds 0 of alice's memories; bob's kept: {kept}")
        for memory in (memory_a, memory_b, bob):
            await memory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hashing", action="store_true",
                        help="use the word-hashing embedder instead of the model")
    asyncio.run(main(parser.parse_args().hashing))

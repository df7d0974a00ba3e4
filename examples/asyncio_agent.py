"""Two asyncio agents sharing memory through memmesh, with no server.

Each agent owns a replica directory and a background gossip node (TLS, cluster key);
agent B dials agent A as a seed. A writes a preference, B sees it within moments and
finds it by meaning, B corrects it, A sees the correction; every call is awaited and
none blocks the event loop (a heartbeat task keeps ticking throughout).

Run:  python examples/asyncio_agent.py            (bundled sentence-transformers model)
      python examples/asyncio_agent.py --hashing  (no model: a word-hashing embedder)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from memmesh.gossip import new_cluster_key
from memmesh.integrations.aio import AsyncMemory
from memmesh.semantic import HashingEmbedder


async def heartbeat(ticks: list[float]) -> None:
    """Proof that the loop stays free: this ticks every 10 ms while memmesh works."""
    while True:
        ticks.append(time.monotonic())
        await asyncio.sleep(0.01)


async def main(hashing: bool) -> None:
    key = new_cluster_key()
    embedder = HashingEmbedder() if hashing else None
    ticks: list[float] = []
    beat = asyncio.create_task(heartbeat(ticks))
    with tempfile.TemporaryDirectory() as tmp:
        node_a = {"cluster_key": key, "mdns": False, "interval": 0.5}
        async with await AsyncMemory.open(Path(tmp) / "agent-a", node=node_a,
                                          embedder=embedder) as a:
            node_b = {**node_a, "seeds": [("127.0.0.1", a.node.port)]}
            async with await AsyncMemory.open(Path(tmp) / "agent-b", node=node_b,
                                              embedder=embedder) as b:
                print(f"agent A listens on 127.0.0.1:{a.node.port}; agent B dials it")

                started = time.monotonic()
                memory_id = await a.add("Alice prefers dark mode in every editor",
                                        user_id="alice", actor="agent-a", policy="lww")
                await b.wait_until(lambda: b.replica.get(memory_id) is not None, timeout=30)
                print(f"B sees A's memory after {time.monotonic() - started:.2f} s")

                hits = await b.search("what colour theme does alice like?", k=1,
                                      user_id="alice")
                print(f"B searches 'colour theme' -> {hits[0].text!r} "
                      f"(score {hits[0].score:.2f})")

                await b.update(memory_id, "Alice switched to light mode", actor="agent-b")

                def corrected() -> bool:
                    record = a.replica.get(memory_id)
                    return record is not None and record.text.endswith("light mode")

                await a.wait_until(corrected, timeout=30)
                print("A sees B's correction:", (await a.get(memory_id)).text)
                for event in await a.history(memory_id):
                    print(f"  {event.op:<7} by {event.actor} on replica {event.replica}")
                status = await a.status()
                print("A's peers:", [p.replica_id for p in status["node"].peers])
    beat.cancel()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    print(f"heartbeat: {len(ticks)} ticks, longest gap {max(gaps) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hashing", action="store_true",
                        help="use the word-hashing embedder instead of the model")
    asyncio.run(main(parser.parse_args().hashing))

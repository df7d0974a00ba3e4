"""Two langmem agents on two memmesh replicas: what one saves, the other finds.

Each agent is a LangChain agent with langmem's ``manage_memory`` and ``search_memory``
tools over a ``MemmeshStore`` on its own replica; the replicas gossip on loopback
(two background nodes). The chat model is scripted so the example runs offline: swap
in a real one (``init_chat_model("anthropic:claude-sonnet-4-5")``) and it decides the
tool calls itself.

Run:  python examples/langmem_two_agents.py            (the bundled embedding model)
      python examples/langmem_two_agents.py --hashing  (no model: word hashing)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langmem import create_manage_memory_tool, create_search_memory_tool

from memmesh.gossip import new_cluster_key
from memmesh.integrations.background import BackgroundNode
from memmesh.integrations.langgraph import MemmeshStore
from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

NAMESPACE = ("memories", "{langgraph_user_id}")
ALICE: RunnableConfig = {"configurable": {"langgraph_user_id": "alice"}}


class ScriptedModel(GenericFakeChatModel):
    """A stand-in chat model that makes one scripted tool call, then answers."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


def agent(store: MemmeshStore, tool: str, **args: Any) -> Any:
    call = AIMessage(content="", tool_calls=[{"name": tool, "args": args, "id": "call-1"}])
    model = ScriptedModel(messages=iter([call, AIMessage(content="done")]))
    tools = [create_manage_memory_tool(NAMESPACE), create_search_memory_tool(NAMESPACE)]
    return create_agent(model, tools, store=store)


def tool_output(state: dict[str, Any]) -> str:
    return next(str(m.content) for m in state["messages"] if isinstance(m, ToolMessage))


def main(hashing: bool) -> int:
    key = new_cluster_key()
    with tempfile.TemporaryDirectory() as tmp, \
            Replica.open(Path(tmp) / "a") as a, Replica.open(Path(tmp) / "b") as b:
        stores = [MemmeshStore(r, index=SemanticIndex(r, HashingEmbedder() if hashing else None),
                               fields=["content"]) for r in (a, b)]
        with BackgroundNode(a, cluster_key=key, mdns=False, interval=0.2) as node_a, \
                BackgroundNode(b, cluster_key=key, mdns=False, interval=0.2,
                               seeds=[("127.0.0.1", node_a.port)]):
            saved = agent(stores[0], "manage_memory",
                          content="Alice prefers dark mode in every editor")
            said = tool_output(saved.invoke({"messages": [("user", "I like dark mode")]},
                                            ALICE))
            print(f"[agent A] {said}")
            started, deadline = time.monotonic(), time.monotonic() + 60
            while time.monotonic() < deadline:
                search = agent(stores[1], "search_memory", query="which editor theme?")
                hits = json.loads(tool_output(search.invoke(
                    {"messages": [("user", "what theme does Alice like?")]}, ALICE)))
                if hits:
                    print(f"[agent B] found after {time.monotonic() - started:.1f}s: "
                          f"{hits[0]['value']['content']}")
                    return 0
                time.sleep(0.1)
    print("[agent B] timed out")
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hashing", action="store_true",
                        help="word-hashing embedder instead of the bundled model")
    raise SystemExit(main(parser.parse_args().hashing))

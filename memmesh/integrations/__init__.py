"""memmesh.integrations: adapters for the frameworks agents run in.

Each adapter is its own module, imported by its own path, so an optional extra that is
not installed only fails the adapter that needs it:

* :mod:`.langgraph`: ``MemmeshStore``, a LangGraph ``BaseStore`` (extra ``langgraph``);
* :mod:`.mcp`: the MCP server behind ``memmesh mcp`` (extra ``mcp``);
* :mod:`.aio`: ``AsyncMemory``, the asyncio facade over a replica, index and node;
* :mod:`.background`: ``BackgroundNode``, a gossip node in a thread for asyncio and
  threaded agents;
* :mod:`.node`: the node runner, the one entry point of ``memmesh node``, the
  multi-process tests and the benchmarks (``python -m memmesh.integrations.node``);
* :mod:`._options`: the command-line options all these entry points share.

Integrations may import every layer below them; nothing below imports them
(docs/architecture.md).
"""

__all__: list[str] = []

"""memmesh.integrations: adapters for the frameworks agents run in.

Each adapter is a public module of its own, imported by its own path, so an optional
extra that is not installed fails only the adapter that needs it: :mod:`.langgraph`
(``MemmeshStore``, extra ``langgraph``), :mod:`.langgraph_saver` (``MemmeshSaver``,
extra ``langgraph``), :mod:`.autogen` (``MemmeshMemory``, extra ``autogen``),
:mod:`.crewai` (``MemmeshCrewStorage``, extra ``crewai``, which needs an environment
without the ``mcp`` extra), :mod:`.mcp` (the server behind ``memmesh mcp``,
extra ``mcp``), :mod:`.aio` (``AsyncMemory``, the asyncio facade), :mod:`.background`
(``BackgroundNode``, a gossip node in a thread) and :mod:`.node` (the node runner behind
``memmesh node``, the multi-process tests and the benchmarks). Integrations may import
every layer below them; nothing below imports them (docs/architecture.md).
"""

__all__: list[str] = []

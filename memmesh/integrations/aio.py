"""``AsyncMemory``: an asyncio facade over a replica, its semantic index and a node.

Most agent frameworks run on asyncio, while the replica is synchronous LMDB and the node
runs on trio. Every replica and index call runs in a small thread pool owned by the
facade, so an fsync or an embedding never stalls the loop; index calls are serialised by
a lock (the index is not thread-safe; a ``Replica`` may be shared by threads); the node,
when asked for, runs in its own thread (``BackgroundNode``) on the same replica and
pushes every write made through the facade. Example::

    async with await AsyncMemory.open("agent-a", node={"cluster_key": key}) as memory:
        memory_id = await memory.add("prefers dark mode", user_id="alice")
        hits = await memory.search("ui theme", user_id="alice")
        billing = memory.view(user_id="alice", agent_id="billing")  # + user, app tiers
        hits = await billing.search("ui theme")
        async for change in memory.watch(user_id="alice"):   # local and from peers
            print(change.op, change.memory_id)
        result = await memory.add_messages(chat, llm=my_llm, user_id="alice")  # Mem0's loop
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from memmesh.crdt import Dot, MemmeshError

if TYPE_CHECKING:
    from memmesh.storage import ChangeEvent, Replica, ScopedView, Watch

__all__ = ["AsyncMemory", "AsyncView", "FacadeClosedError"]

T = TypeVar("T")


class FacadeClosedError(MemmeshError):
    """The :class:`AsyncMemory` was closed; open a new one."""


class AsyncMemory:
    """Awaitable memory operations over ``replica`` (and ``index`` and ``node``).

    ``replica`` is an open :class:`memmesh.storage.Replica`. ``index`` is a
    :class:`memmesh.semantic.SemanticIndex` over it; when None, one is built on the first
    :meth:`search` with ``embedder`` (default: the bundled sentence-transformers model,
    loaded in a worker thread). ``node`` is a running
    :class:`~memmesh.integrations.background.BackgroundNode` or None for a replica that only syncs
    through another process's node on the same path. ``threads`` sizes the worker pool.

    The facade closes what it opened (see :meth:`open`); objects handed in are closed by
    their owner, except that :meth:`aclose` stops a ``node`` passed with ``own_node=True``.
    """

    def __init__(
        self,
        replica: Replica,
        *,
        index: Any = None,
        embedder: Any = None,
        node: Any = None,
        threads: int = 4,
        own_replica: bool = False,
        own_node: bool = False,
    ) -> None:
        if threads < 1:
            raise MemmeshError("threads must be >= 1")
        self.replica = replica
        self._index = index
        self._embedder = embedder
        self.node = node
        self._executor = ThreadPoolExecutor(max_workers=threads,
                                            thread_name_prefix="memmesh-aio")
        self._index_lock = threading.Lock()
        self._own_replica = own_replica
        self._own_node = own_node
        self._closed = False
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()  # closed by aclose
        self._subscriptions: set[asyncio.Task[None]] = set()

    # -- construction -----------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Any = None,
        node: Mapping[str, Any] | None = None,
        threads: int = 4,
        **replica_options: Any,
    ) -> AsyncMemory:
        """Open the replica at ``path`` off the loop and, if ``node`` (a mapping of
        :class:`memmesh.gossip.Node` options, e.g. ``cluster_key``, ``seeds``, ``port``)
        is given, start a background gossip node on it. Close with :meth:`aclose` or
        ``async with``."""
        from memmesh.storage import Replica

        loop = asyncio.get_running_loop()
        replica = await loop.run_in_executor(
            None, functools.partial(Replica.open, path, **replica_options))
        background = None
        try:
            if node is not None:
                from memmesh.integrations.background import BackgroundNode

                background = BackgroundNode(replica, **dict(node))
                await loop.run_in_executor(None, background.start)
        except BaseException:
            replica.close()
            raise
        return cls(replica, embedder=embedder, node=background, threads=threads,
                   own_replica=True, own_node=background is not None)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for running calls, stop an owned node, close an owned replica."""
        if self._closed:
            return
        self._closed = True
        for watch in list(self._watches):
            watch.close()
        for task in list(self._subscriptions):
            task.cancel()
        await asyncio.gather(*self._subscriptions, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))
        if self._own_node and self.node is not None:
            await loop.run_in_executor(None, self.node.stop)
        if self._own_replica:
            self.replica.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- plumbing -----------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in the facade's worker pool and await it.

        The escape hatch for replica methods this facade does not wrap
        (``await memory.run(memory.replica.as_of, ts)``)."""
        if self._closed:
            raise FacadeClosedError("this AsyncMemory is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _ensure_index(self) -> Any:
        if self._index is None:
            from memmesh.semantic import SemanticIndex

            self._index = SemanticIndex(self.replica, self._embedder)
        return self._index

    def _with_index(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._with_index_do(lambda index: getattr(index, method)(*args, **kwargs))

    def _with_index_do(self, fn: Callable[[Any], T]) -> T:
        """``fn(index)`` holding the index lock (the index built on first use)."""
        with self._index_lock:
            return fn(self._ensure_index())

    @property
    def index(self) -> Any:
        """The semantic index (None until built by a search, unless one was given)."""
        return self._index

    # -- memories -------------------------------------------------------------------------

    async def add(self, text: str, **options: Any) -> str:
        """``replica.add``: create a memory, return its id once durable. Options as
        ``Replica.add`` (scope fields, ``actor``, ``role``, ``metadata``, ``confidence``,
        ``ttl``, ``policy``, ``tier``, ``importance``, ``detail``)."""
        return str(await self.run(self.replica.add, text, **options))

    async def get(self, memory_id: str) -> Any:
        """``replica.get``: the live ``MemoryRecord`` or None."""
        return await self.run(self.replica.get, memory_id)

    async def update(self, memory_id: str, text: str, **options: Any) -> None:
        """``replica.update``: a new version superseding the ones seen here (options as
        ``Replica.update``: ``actor``, ``role``, ``confidence``, ``metadata``,
        ``importance``, ``detail``)."""
        await self.run(self.replica.update, memory_id, text, **options)

    async def delete(self, memory_id: str, **options: Any) -> bool:
        """``replica.delete`` (observed-remove; False if nothing was live here);
        ``actor``, ``role`` and ``detail`` are recorded on the replicated DELETE event."""
        return bool(await self.run(self.replica.delete, memory_id, **options))

    async def delete_all(self, **options: Any) -> int:
        """``replica.delete_all``: delete every memory of a scope; return the count."""
        return int(await self.run(self.replica.delete_all, **options))

    async def end_run(self, run_id: str, **options: Any) -> int:
        """``replica.end_run``: discard a session's run-scoped memories; return the count."""
        return int(await self.run(self.replica.end_run, run_id, **options))

    async def add_messages(self, messages: Any, *, llm: Any, **options: Any) -> Any:
        """``memmesh.semantic.add_messages`` on this facade's replica and index: one turn
        of the LLM memory pipeline (extract facts from OpenAI-style ``messages``, decide
        ADD/UPDATE/DELETE/NOOP for each against the memories of the scope's view), run
        in the worker pool like every other call; returns its ``PipelineResult``.
        ``options``: the scope fields and ``metadata``, then ``MemoryPipeline``'s keyword
        arguments (``actor``, ``timeout``, ``retries``, prompts). ``llm`` is a sync or
        async ``prompt -> str`` callable; an async one is awaited in the pipeline's own
        thread, never on this loop. The turn holds the index lock, as a search does."""
        from memmesh.semantic import add_messages

        def turn(index: Any) -> Any:
            return add_messages(self.replica, index, messages, llm=llm, **options)

        return await self.run(self._with_index_do, turn)

    def view(self, **scope: str | None) -> AsyncView:
        """An awaitable :class:`memmesh.storage.ScopedView`: what an agent with this
        scope sees (app, user, agent and run tiers), with ``list``, ``get``, ``search``."""
        return AsyncView(self, self.replica.view(**scope))

    async def forget(self, memory_id: str, *, actor: str | None = None,
                     role: str | None = None) -> bool:
        """``replica.forget``: erase content and history here and on every replica; the
        tombstone keeps only who (``actor``, ``role``) and when."""
        return bool(await self.run(self.replica.forget, memory_id, actor=actor, role=role))

    async def history(self, memory_id: str) -> list[Any]:
        """``replica.history``: the memory's events, oldest first."""
        return list(await self.run(self.replica.history, memory_id))

    async def list(self, **scope_filters: Any) -> builtins.list[Any]:
        """``replica.list``: live memories matching the scope filters (and ``filters``,
        ``limit``, ``offset``), oldest first."""
        return list(await self.run(self.replica.list, **scope_filters))

    async def search(self, query: str, k: int = 10, **scope_filters: Any) -> builtins.list[Any]:
        """``SemanticIndex.search``: the ``k`` best ``Hit``\\ s within the scope filters
        (or a ``view``; and ``filters``, ``threshold``, ``offset``)."""
        return list(await self.run(self._with_index, "search", query, k, **scope_filters))

    # -- subscriptions --------------------------------------------------------------------

    def watch(self, since: int | None = None, **filters: Any) -> Watch:
        """``replica.watch``: the changes (local and merged from peers) as an async
        iterator, ``async for change in memory.watch(user_id="alice")``; journal reads
        run off the loop. Filters and ``since`` as ``Replica.watch``. Closed by
        :meth:`aclose`."""
        if self._closed:
            raise FacadeClosedError("this AsyncMemory is closed")
        watch = self.replica.watch(since, **filters)
        self._watches.add(watch)
        return watch

    def subscribe(self, callback: Callable[[ChangeEvent], Any], since: int | None = None,
                  **filters: Any) -> asyncio.Task[None]:
        """Call ``callback(event)`` (a function or a coroutine function, awaited) on
        this loop for each change :meth:`watch` would yield, in order; return the task
        (cancel it to stop; :meth:`aclose` stops it too). If the callback raises, the
        task ends with that exception and nothing after that event is delivered: resume
        with ``since`` the ``cursor`` of the last event handled."""
        watch = self.watch(since, **filters)

        async def deliver() -> None:
            try:
                async for event in watch:
                    result = callback(event)
                    if asyncio.iscoroutine(result):
                        await result
            finally:
                watch.close()
                self._watches.discard(watch)

        task = asyncio.get_running_loop().create_task(deliver())
        self._subscriptions.add(task)
        task.add_done_callback(self._subscriptions.discard)
        return task

    # -- conflicts ------------------------------------------------------------------------

    async def conflicts(self, **scope_filters: Any) -> builtins.list[Any]:
        """``replica.conflicts``: live memories with several standing versions."""
        return list(await self.run(self.replica.conflicts, **scope_filters))

    async def resolve(self, memory_id: str, text: str, *, inputs: tuple[Dot, ...],
                      resolver: str = "manual", **options: Any) -> Any:
        """``replica.resolve``: a RESOLVE version dominating the ``inputs`` versions."""
        return await self.run(self.replica.resolve, memory_id, text, resolver=resolver,
                              inputs=inputs, **options)

    async def resolve_conflicts(self, resolver: Any, **options: Any) -> builtins.list[Any]:
        """:func:`memmesh.merge.resolve_conflicts` with ``resolver``, off the loop."""
        from memmesh.merge import resolve_conflicts

        return list(await self.run(resolve_conflicts, self.replica, resolver, **options))

    # -- sets -----------------------------------------------------------------------------

    async def set_add(self, key: str, element: Any, **scope: Any) -> None:
        await self.run(self.replica.set_add, key, element, **scope)

    async def set_remove(self, key: str, element: Any) -> bool:
        return bool(await self.run(self.replica.set_remove, key, element))

    async def set_members(self, key: str) -> frozenset[Any]:
        return frozenset(await self.run(self.replica.set_members, key))

    # -- operations -----------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The replica's figures and, with a node, its status (peers, lag)."""
        out: dict[str, Any] = {"replica": await self.run(self.replica.stats),
                               "digest": await self.run(self.replica.state_digest)}
        if self.node is not None:
            out["node"] = await self.run(self.node.status)
        return out

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 10.0,
                         interval: float = 0.05) -> bool:
        """Poll ``predicate`` (run in the pool: it may read the replica) until it holds or
        ``timeout`` seconds pass; return whether it held. Handy for "visible on peers yet?"
        in examples and tests."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self.run(predicate):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(interval)


class AsyncView:
    """:class:`memmesh.storage.ScopedView` reads, awaited off the loop (from
    :meth:`AsyncMemory.view`). ``view`` is the underlying read-only view."""

    def __init__(self, memory: AsyncMemory, view: ScopedView) -> None:
        self.memory = memory
        self.view = view

    async def list(self, **options: Any) -> builtins.list[Any]:
        """``view.list``: visible memories, most specific tier first (``filters``,
        ``limit``, ``offset``)."""
        return list(await self.memory.run(self.view.list, **options))

    async def get(self, memory_id: str) -> Any:
        """``view.get``: the memory if visible in the view, else None."""
        return await self.memory.run(self.view.get, memory_id)

    async def search(self, query: str, k: int = 10, **options: Any) -> builtins.list[Any]:
        """``SemanticIndex.search(query, k, view=view)`` (``filters``, ``threshold``,
        ``offset``)."""
        return await self.memory.search(query, k, view=self.view, **options)

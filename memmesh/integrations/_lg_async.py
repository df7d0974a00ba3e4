"""Concurrent ``abatch`` calls of ``MemmeshStore`` share one worker-thread hop.

An asyncio agent issues store calls concurrently (``asyncio.gather`` of many ``aput``,
``aget``, ``asearch``). Each call queued on an event loop while none is running joins the
next round: the round runs every queued batch, in arrival order and each as its own batch
(reads before writes within it, as :meth:`MemmeshStore.batch`), in one worker thread under
one lock, then resolves each caller's future. This is the per-loop-tick collection of
LangGraph's ``AsyncBatchedBaseStore``, without merging batches, so every call keeps the
semantics of a call made alone while thousands of them no longer cost a thread hop each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from langgraph.store.base import Op, Result

from ._lg_index import Bridge

__all__ = ["Coalescer", "Outcome", "RunBatches"]

#: A batch's results, or the exception it raised (delivered to that caller only).
Outcome = list[Result] | Exception
#: Runs the batches of one round in order: one outcome per batch.
RunBatches = Callable[[list[list[Op]], Bridge], list[Outcome]]

_Queue = list[tuple[list[Op], "asyncio.Future[list[Result]]"]]


class Coalescer:
    """Queues ``submit`` calls per event loop and runs them in rounds with ``run``."""

    def __init__(self, run: RunBatches) -> None:
        self._run = run
        self._guard = threading.Lock()  # one store may serve loops in several threads
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, ops: list[Op]) -> list[Result]:
        """Run ``ops`` as one batch in the next round; its results or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Result]] = loop.create_future()
        with self._guard:
            queue = self._queues.get(loop)
            start = queue is None
            if queue is None:
                queue = self._queues[loop] = []
            queue.append((ops, future))
        if start:
            task = loop.create_task(self._drain(loop))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        def bridge(coro: Awaitable[list[list[float]]]) -> list[list[float]]:
            future = asyncio.run_coroutine_threadsafe(_awaited(coro), loop)
            return future.result()

        round_: _Queue = []
        try:
            while True:
                with self._guard:
                    round_ = self._queues.get(loop) or []
                    if not round_:
                        self._queues.pop(loop, None)
                        return
                    self._queues[loop] = []
                outcomes = await asyncio.to_thread(self._run, [ops for ops, _ in round_],
                                                   bridge)
                for (_, future), outcome in zip(round_, outcomes, strict=True):
                    if future.done():  # the caller was cancelled meanwhile
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        except BaseException as exc:  # the round itself failed or was cancelled
            with self._guard:
                waiting = round_ + self._queues.pop(loop, [])
            for _, future in waiting:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            raise


async def _awaited(coro: Awaitable[list[list[float]]]) -> list[list[float]]:
    return await coro

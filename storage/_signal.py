"""``CommitSignal``: wakes this process's journal watchers after a write commits.

The environment calls :meth:`CommitSignal.fire` after every committed write transaction
(local writes, ``sync_apply``, TTL collection). Firing never waits on a watcher: it bumps
a generation counter under a lock held for a few instructions, notifies the threads
blocked in :meth:`wait`, and runs the wake callbacks of async waiters (each only
schedules a wake-up on its event loop), swallowing their errors, so a slow, dead or
broken watcher can neither delay nor fail a write. A watcher records the generation
before it reads the journal and waits only while it is unchanged, so no commit between
its read and its wait is missed (the condition-variable pattern). Writes of other
processes on the same directory fire nothing here: watchers also poll.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

__all__ = ["CommitSignal"]

log = logging.getLogger(__name__)


class CommitSignal:
    """A generation counter bumped after each commit, with blocking and callback waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._closed = False
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._ids = itertools.count()

    @property
    def generation(self) -> int:
        """How many times the signal fired (a commit or a :meth:`poke`)."""
        return self._generation

    @property
    def closed(self) -> bool:
        """True once the replica closed: watchers end."""
        return self._closed

    def fire(self) -> None:
        """Wake every waiter (called after each commit; never raises, never blocks)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a waiter's event loop may be gone: never the writer's problem
                log.debug("watch wake-up callback failed", exc_info=True)

    def poke(self) -> None:
        """Wake every waiter without a commit (a watcher closing)."""
        self.fire()

    def close(self) -> None:
        """Mark the signal closed and wake every waiter so it can end."""
        self._closed = True
        self.fire()

    def wait(self, generation: int, timeout: float | None) -> int:
        """Block until the generation differs from ``generation``, the signal closes or
        ``timeout`` seconds pass; return the current generation."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != generation or self._closed,
                                timeout)
            return self._generation

    def subscribe(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` after each firing (it must only schedule work, never
        block); return the function that unsubscribes it."""
        with self._cond:
            ident = next(self._ids)
            self._callbacks[ident] = callback

        def unsubscribe() -> None:
            with self._cond:
                self._callbacks.pop(ident, None)

        return unsubscribe

    @property
    def subscribers(self) -> int:
        """How many callbacks are subscribed (async waiters waiting right now)."""
        return len(self._callbacks)

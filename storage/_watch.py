"""``Watch``: the changes of a replica as an iterator (blocking, trio or asyncio), and
``Subscription``, the same delivered to a callback in its own thread.

A watch is a :class:`~._follow.JournalFollower` over the persistent change journal plus
a wake-up: it reads one page of the journal at a time, lazily, turns it into events
(:mod:`._changes`) and hands them out in commit order; when the journal holds nothing
new it waits for the replica's :class:`~._signal.CommitSignal` (fired after every
commit in this process, ``sync_apply`` included) or at most ``poll_interval`` seconds,
so writes of other processes on the same directory are seen too. It buffers at most
one page, registers nothing while not waiting and is never waited on by a writer: a
slow or abandoned watch costs writers nothing and holds no memory beyond its page (the
journal itself keeps the backlog, up to its truncation bound, after which the watch
reports RESET). Delivery is at least once: ``watch.cursor`` (or an event's ``cursor``)
passed back as ``since`` resumes after what was handled, across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import lmdb

from memmesh.crdt import InvalidArgumentError

from ._changes import ChangeEvent, WatchFilter, page_events
from ._env import Env
from ._follow import FollowPage, JournalFollower, JournalSource
from ._signal import CommitSignal

__all__ = ["Subscription", "Watch"]

log = logging.getLogger(__name__)

_UNSET: Any = object()


def _seconds(value: float | None, name: str, *, positive: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or value < 0 or (positive and value == 0):
        raise InvalidArgumentError(f"{name} must be a number of seconds"
                                   f" {'> 0' if positive else '>= 0'} or None")
    return float(value)


class Watch:
    """The changes after ``since`` that ``wanted`` accepts (from :meth:`Replica.watch`).

    Iterate it (``for event in watch``; ``async for`` under trio or asyncio) or call
    :meth:`next`. Iteration ends when no event came for ``timeout`` seconds (None: never),
    when :meth:`close` is called (from any thread) or when the replica closes.
    """

    def __init__(self, env: Env, source: JournalSource, signal: CommitSignal,
                 clock: Callable[[], int], *, since: int | None, wanted: WatchFilter,
                 page: int = 256, poll_interval: float = 1.0,
                 timeout: float | None = None) -> None:
        interval = _seconds(poll_interval, "poll_interval", positive=True)
        assert interval is not None
        self.poll_interval = interval
        self.timeout = _seconds(timeout, "timeout", positive=False)
        self.wanted = wanted
        self._env = env
        self._signal = signal
        self._clock = clock
        start = source.journal_seq() if since is None else since
        self._follower = JournalFollower(source, start, page=page)
        self._buffer: deque[ChangeEvent] = deque()
        self._page: FollowPage | None = None  # the page the buffer came from
        self._delivered = start
        self._closed = False

    # -- state ---------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """Every change up to here was handed out or filtered out: resume with
        ``since=watch.cursor`` (saved once the events handed out are handled)."""
        if self._buffer:
            return self._delivered
        cursor = self._follower.cursor
        assert cursor is not None
        return cursor

    @property
    def buffered(self) -> int:
        """Events read but not handed out yet (at most one page)."""
        return len(self._buffer)

    @property
    def page(self) -> int:
        return self._follower.page

    @property
    def closed(self) -> bool:
        return self._closed or self._signal.closed

    def close(self) -> None:
        """End the iteration (a blocked :meth:`next` returns None); idempotent."""
        if not self._closed:
            self._closed = True
            self._buffer.clear()
            self._signal.poke()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Watch(cursor={self.cursor}, buffered={self.buffered}, closed={self.closed})"

    # -- reading -------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read the next page into the buffer; False when the journal holds nothing new."""
        if self.closed:
            return False
        try:
            page = self._follower.read()
            if page is None:
                return False
            with self._env.read() as txn:
                events = page_events(txn, page, self.wanted, self._clock())
        except lmdb.Error:
            if self.closed:  # the replica closed under us
                return False
            raise
        if events:
            self._buffer.extend(events)
            self._page = page
        else:
            self._follower.advance(page)
        return True

    def _pop(self) -> ChangeEvent:
        event = self._buffer.popleft()
        self._delivered = event.cursor
        if not self._buffer and self._page is not None:
            self._follower.advance(self._page)
            self._page = None
        return event

    def _wait_for(self, timeout: float | None, deadline: float | None) -> float:
        """Seconds to wait before polling again (<= 0: give up)."""
        if deadline is None:
            return self.poll_interval
        return min(self.poll_interval, deadline - time.monotonic())

    def next(self, timeout: float | None = _UNSET) -> ChangeEvent | None:
        """The next event, waiting up to ``timeout`` seconds (default: the watch's;
        None: until one comes or the watch closes); None if none came."""
        limit = self.timeout if timeout is _UNSET else _seconds(timeout, "timeout",
                                                               positive=False)
        deadline = None if limit is None else time.monotonic() + limit
        while not self.closed:
            if self._buffer:
                return self._pop()
            generation = self._signal.generation
            if self._fill():
                continue
            wait = self._wait_for(limit, deadline)
            if wait <= 0:
                return None
            self._signal.wait(generation, wait)
        return None

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> ChangeEvent:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    # -- async (trio or asyncio) -------------------------------------------------------

    async def anext(self, timeout: float | None = _UNSET) -> ChangeEvent | None:
        """:meth:`next` for trio or asyncio: journal reads run in a worker thread, the
        wait is on the event loop (woken by commits of this process)."""
        import sniffio

        library = sniffio.current_async_library()
        if library not in ("asyncio", "trio"):
            raise InvalidArgumentError(f"watch supports trio and asyncio, not {library}")
        limit = self.timeout if timeout is _UNSET else _seconds(timeout, "timeout",
                                                               positive=False)
        deadline = None if limit is None else time.monotonic() + limit
        while not self.closed:
            if self._buffer:
                return self._pop()
            generation = self._signal.generation
            if await _in_thread(library, self._fill):
                continue
            wait = self._wait_for(limit, deadline)
            if wait <= 0:
                return None
            await _wait_async(library, self._signal, generation, wait)
        return None

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> ChangeEvent:
        event = await self.anext()
        if event is None:
            raise StopAsyncIteration
        return event


async def _in_thread(library: str, fn: Callable[[], bool]) -> bool:
    if library == "trio":
        import trio

        return await trio.to_thread.run_sync(fn)
    return await asyncio.to_thread(fn)


async def _wait_async(library: str, signal: CommitSignal, generation: int,
                      seconds: float) -> None:
    """Wait on the event loop until ``signal`` fires past ``generation`` (or closes),
    at most ``seconds``; the signal only schedules the wake-up on the loop."""
    if library == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        woke = trio.Event()
        unsubscribe = signal.subscribe(lambda: token.run_sync_soon(woke.set))
        try:
            if signal.generation == generation and not signal.closed:
                with trio.move_on_after(seconds):
                    await woke.wait()
        finally:
            unsubscribe()
        return
    loop = asyncio.get_running_loop()
    fired = asyncio.Event()
    unsubscribe = signal.subscribe(lambda: loop.call_soon_threadsafe(fired.set))
    try:
        if signal.generation == generation and not signal.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fired.wait(), seconds)
    finally:
        unsubscribe()


class Subscription:
    """Calls ``callback(event)`` for each event of ``watch``, in order, in its own
    daemon thread (a slow callback delays only its own events). If the callback raises,
    the subscription stops, keeps the exception in :attr:`error` and :attr:`cursor`
    stays before that event, so resuming from it redelivers the event."""

    def __init__(self, watch: Watch, callback: Callable[[ChangeEvent], object], *,
                 name: str = "memmesh-watch") -> None:
        if not callable(callback):
            raise InvalidArgumentError("callback must be callable")
        self.watch = watch
        self.callback = callback
        self.error: BaseException | None = None
        self._handled = watch.cursor
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Subscription:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def cursor(self) -> int:
        """Every change up to here was handled by the callback (or filtered out):
        pass it as ``since`` to resume."""
        return self._handled

    def _run(self) -> None:
        try:
            while (event := self.watch.next(None)) is not None:
                self.callback(event)
                self._handled = self.watch.cursor
        except BaseException as exc:  # reported through .error; the thread just ends
            self.error = exc
            log.exception("watch callback failed; subscription stopped at cursor %d",
                          self._handled)
        finally:
            self.watch.close()

    def close(self, timeout: float = 30.0) -> None:
        """Stop delivering and wait for the callback in progress; idempotent."""
        self.watch.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Subscription:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Run a :class:`~memmesh.gossip.Node` from code that is not trio (asyncio, threads).

trio cannot share an asyncio event loop, so :class:`BackgroundNode` runs trio and the
node in a daemon thread and gives a thread-safe handle (also a context manager); from
asyncio, call its blocking methods with ``asyncio.to_thread``::

    handle = BackgroundNode(replica, cluster_key=key, seeds=[("10.0.0.5", 7700)])
    handle.start()                      # returns once the node listens
    print(handle.port, handle.status().peers)
    replica.add("the build is green", agent_id="ci")   # writes are pushed at once
    handle.subscribe(print, agent_id="ci")  # every change, local or from a peer
    handle.stop()
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import trio

from memmesh.gossip import Node, NodeStatus
from memmesh.gossip.protocol import GossipError, NodeReplica
from memmesh.storage import ChangeEvent, Subscription

__all__ = ["BackgroundNode"]


class BackgroundNode:
    """A :class:`Node` living in its own thread; every method is thread-safe."""

    def __init__(self, replica: NodeReplica, **node_options: Any) -> None:
        self.replica = replica
        self.node_options = node_options
        self.node: Node | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._subscriptions: list[Subscription] = []

    @property
    def port(self) -> int:
        if self.node is None:
            raise GossipError("the node is not running")
        port: int = self.node.port
        return port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    def start(self, timeout: float = 30.0) -> BackgroundNode:
        """Start the thread and wait until the node listens (raises what start-up raised)."""
        if self._thread is not None:
            raise GossipError("already started")
        self._thread = threading.Thread(target=self._main, name="memmesh-gossip", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise GossipError("the node did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (saving known peers) and its subscriptions, join the thread;
        idempotent."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close(timeout)
        thread = self._thread
        if thread is None:
            return
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        thread.join(timeout)
        self._thread = None

    def status(self) -> NodeStatus:
        """``node.status()`` computed in the node's thread."""
        status: NodeStatus = self.call(lambda node: node.status())
        return status

    @property
    def peers(self) -> tuple[str, ...]:
        peers: tuple[str, ...] = self.call(lambda node: node.peers)
        return peers

    def call(self, fn: Any) -> Any:
        """Run ``fn(node)`` (synchronous) in the trio thread and return its result."""
        if self._token is None or self.node is None:
            raise GossipError("the node is not running")
        node = self.node
        return trio.from_thread.run_sync(lambda: fn(node), trio_token=self._token)

    def sync_now(self) -> None:
        """Start a pull on every link now and wait for the requests to go out."""
        if self._token is None or self.node is None:
            raise GossipError("the node is not running")
        trio.from_thread.run(self.node.sync_now, trio_token=self._token)

    def subscribe(self, callback: Callable[[ChangeEvent], object], since: int | None = None,
                  **filters: Any) -> Subscription:
        """Call ``callback(event)`` for each change of the replica (local writes and
        what this node merges from peers) that ``filters`` accept (those of
        ``Replica.watch``: scope fields, ``ops``, ``prefix``, ``where``), in commit
        order, from ``since`` (None: from now). The callback runs in a thread of its own,
        never the node's, so a slow one delays only its own events and never a sync;
        if it raises, the subscription stops with ``.error`` set and ``.cursor`` before
        that event. Stopped by :meth:`stop` (or ``subscription.close()``)."""
        watch = getattr(self.replica, "watch", None)
        if watch is None:
            raise GossipError("this replica cannot be watched (no watch method)")
        subscription = Subscription(watch(since, **filters), callback,
                                    name="memmesh-subscription").start()
        self._subscriptions = [s for s in self._subscriptions if s.running]
        self._subscriptions.append(subscription)
        return subscription

    def __enter__(self) -> BackgroundNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            trio.run(self._amain)
        except BaseException as exc:  # reported to start(); the thread just ends
            self._error = exc
        finally:
            self._ready.set()

    async def _amain(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with Node(self.replica, **self.node_options) as node:
            self.node = node
            self._ready.set()
            await self._stop.wait()
        self.node = None

"""Helpers of the tests that drive live trio ``Node`` objects over memory streams."""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing

from memmesh.gossip import Node


def mem_node(replica: object, **kw: object) -> Node:
    """A node for memory streams: no TLS, no mDNS, storage calls inline (mock clocks
    work), no peer book; ``kw`` overrides any option."""
    opts: dict[str, object] = dict(insecure=True, mdns=False, storage_threads=False,
                                   remember_peers=False)
    opts.update(kw)
    return Node(replica, **opts)  # type: ignore[arg-type]


async def wait_for(cond: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll ``cond`` until it holds; fail after ``timeout`` (a bound, not a sleep)."""
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.01)


def connect(nursery: trio.Nursery, a: Node, b: Node) -> None:
    """Link ``a`` (dialling) and ``b`` over an in-memory stream pair."""
    s1, s2 = trio.testing.memory_stream_pair()
    nursery.start_soon(lambda: a.handle_stream(s1, outbound=True))
    nursery.start_soon(lambda: b.handle_stream(s2, outbound=False))

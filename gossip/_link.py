"""Moves one connection's bytes between a trio stream and the node's sync policy.

Two bounded tasks per link: the *reader* hands received bytes (at most 64 KiB a read)
to ``SyncPolicy.receive_data``; the *writer* sends what the session has to send, each
send under a timeout, and fires the session's timers at ``next_deadline()``. Nothing is
decided here. Whatever goes wrong in a link's tasks (a broken stream, an unexpected
exception) closes this link only: it is counted against the peer, logged at WARNING,
and never reaches the node's nursery.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import trio

from .protocol import PeerLink, Session

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["Link", "peer_address", "peer_host"]

log = logging.getLogger("memmesh.gossip")

READ_SIZE = 65536


class Link:
    """One connection to a peer (inbound or outbound) over an authenticated stream."""

    def __init__(self, node: Node, stream: trio.abc.Stream, plink: PeerLink, *,
                 address: tuple[str, int] | None, send_timeout: float) -> None:
        self.node = node
        self.stream = stream
        self.plink = plink
        self.address = address
        self.send_timeout = send_timeout
        self.connected_at = time.time()
        self.last_contact = self.connected_at  # Unix time of the latest bytes received
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = trio.Event()
        self._wake_event = trio.Event()

    @property
    def session(self) -> Session:
        return self.plink.session

    @property
    def outbound(self) -> bool:
        return self.plink.outbound

    def listen_address(self) -> tuple[str, int] | None:
        """Where the peer listens: the address we dialled, else its host on this
        connection with the port its HELLO named (None: unknown)."""
        if self.address is not None:
            return self.address
        peer = self.session.peer
        if peer is None or not peer.port:
            return None
        host = peer_host(self.stream)
        return None if host is None else (host, peer.port)

    def wake(self) -> None:
        self._wake_event.set()

    async def run(self) -> None:
        node = self.node
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader)
                await self._writer()
                nursery.cancel_scope.cancel()
        except Exception as exc:  # a link's failure must never take the node down
            node.policy.fail(self.plink, trio.current_time(), "internal",
                             f"{type(exc).__name__} in the link's task")
        finally:
            if not self.plink.closed:
                node.policy.close_link(self.plink, trio.current_time())
            node.policy.forget(self.plink)
            node.after_policy()
            self.closed.set()
            await trio.aclose_forcefully(self.stream)

    async def _reader(self) -> None:
        node = self.node
        while not self.plink.closed:
            try:
                data = bytes(await self.stream.receive_some(READ_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("link %s: read failed: %s", self.plink.name, type(exc).__name__)
                data = b""
            self.bytes_in += len(data)
            if data:
                self.last_contact = time.time()
            node.policy.receive_data(self.plink, data, trio.current_time(), node.wall_ms())
            node.after_policy()
            if not data:
                return

    async def _writer(self) -> None:
        node = self.node
        s = self.session
        while True:
            deadline = s.next_deadline()
            now = trio.current_time()
            if deadline is not None and now >= deadline:
                node.policy.handle_timeout(self.plink, now)
                node.after_policy()
                continue
            data = s.data_to_send()
            if data:
                try:
                    with trio.fail_after(self.send_timeout):
                        await self.stream.send_all(data)
                except (trio.TooSlowError, trio.BrokenResourceError,
                        trio.ClosedResourceError, OSError) as exc:
                    node.policy.fail(self.plink, trio.current_time(), "send",
                                     f"sending failed: {type(exc).__name__}")
                    node.after_policy()
                    return
                self.bytes_out += len(data)
                continue
            if s.closed:
                return
            self._wake_event = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wake_event.wait()


def peer_address(stream: object) -> tuple[str, int] | None:
    """The remote ``(host, port)`` of a socket stream, TLS-wrapped or not (None: not a
    socket); an IPv4 peer of a dual-stack listener as plain IPv4 (not ``::ffff:a.b.c.d``)."""
    inner: Any = getattr(stream, "transport_stream", stream)
    try:
        name = inner.socket.getpeername()
        host, port = str(name[0]), int(name[1])
    except (AttributeError, OSError, IndexError, TypeError, ValueError):
        return None
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return host, port


def peer_host(stream: object) -> str | None:
    """The remote host of a socket stream (see :func:`peer_address`)."""
    address = peer_address(stream)
    return None if address is None else address[0]

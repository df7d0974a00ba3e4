"""TLS 1.3 on a node's connections (:mod:`._security` makes the contexts).

``accept`` runs the server side of an inbound handshake under the policy's
``HandshakeGate``: beyond ``max_handshakes`` pending ones the oldest is cancelled, so
connections that never finish their handshake cannot lock a real peer out; each drop is
counted (``dropped:handshakes``) and logged at most once a second. ``connect`` is the
client side of a dialled connection. Both are bounded by ``timeout`` and return the
stream with the peer's certified replica id, or ``(None, None)`` when the handshake
failed. Without a cluster key (``insecure``) streams pass through unauthenticated.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections import Counter

import trio

from ._security import ClusterCredentials, SecurityError, peer_identity
from .protocol import HandshakeGate

__all__ = ["TlsLayer"]

log = logging.getLogger("memmesh.gossip")

Secured = tuple[trio.abc.Stream | None, str | None]


class TlsLayer:
    """The node's TLS handshakes; see the module docstring."""

    __slots__ = ("_cancel", "_client", "_counters", "_drops", "_gate", "_key", "_logged",
                 "_server", "timeout")

    def __init__(self, cluster_key: bytes | None, *, gate: HandshakeGate,
                 counters: Counter[str], timeout: float) -> None:
        self._key = cluster_key
        self._gate = gate
        self._counters = counters
        self.timeout = timeout
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._cancel: dict[object, trio.CancelScope] = {}  # pending handshakes
        self._drops = 0  # not yet logged
        self._logged = -math.inf

    @property
    def secure(self) -> bool:
        return self._key is not None

    async def start(self, replica_id: str) -> None:
        """Make this node's certificate under the cluster CA (off the event loop)."""
        if self._key is not None:
            creds = await trio.to_thread.run_sync(ClusterCredentials.create, self._key,
                                                  replica_id)
            self._server = creds.server_context()
            self._client = creds.client_context()

    async def accept(self, stream: trio.SocketStream) -> Secured:
        """The server side of an inbound connection, under the handshake gate."""
        if self._server is None:
            return stream, None
        key = object()
        with trio.CancelScope() as scope:
            self._cancel[key] = scope
            victim = self._gate.admit(key)
            if victim is not None:
                self._cancel.pop(victim).cancel()
                self._dropped()
            try:
                return await self._handshake(stream, self._server, server=True)
            finally:
                self._gate.done(key)
                self._cancel.pop(key, None)
        await trio.aclose_forcefully(stream)
        return None, None

    async def connect(self, stream: trio.SocketStream) -> Secured:
        """The client side of a dialled connection."""
        if self._client is None:
            return stream, None
        return await self._handshake(stream, self._client, server=False)

    async def _handshake(self, stream: trio.SocketStream, ctx: ssl.SSLContext, *,
                         server: bool) -> Secured:
        tls = trio.SSLStream(stream, ctx, server_side=server,
                             server_hostname=None if server else "memmesh")
        try:
            with trio.fail_after(self.timeout):
                await tls.do_handshake()
            return tls, peer_identity(tls)
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError,
                SecurityError) as exc:
            log.info("TLS handshake failed (%s)", type(exc).__name__)
            await trio.aclose_forcefully(tls)
            return None, None

    def _dropped(self) -> None:
        """Count a connection dropped from the gate; log at most one line a second (a
        flood of them must not become a flood of log lines)."""
        self._counters["dropped:handshakes"] += 1
        self._drops += 1
        now = trio.current_time()
        if now - self._logged >= 1.0:
            log.warning("node: dropped (handshakes): %d connection(s) still in their TLS "
                        "handshake, oldest first, to admit newer ones (max_handshakes=%d)",
                        self._drops, self._gate.cap)
            self._drops = 0
            self._logged = now

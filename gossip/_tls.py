"""TLS 1.3 on a node's connections (:mod:`._security` makes the contexts).

``accept`` runs the server side of an inbound handshake under the policy's
:class:`~.protocol.HandshakeGate`: beyond ``max_handshakes`` pending ones the oldest is
cancelled, so connections that never finish their handshake cannot lock a real peer out;
each drop is counted (``dropped:handshakes``) and logged at most once a second.
``connect`` is the client side of a dialled connection. Both are bounded by ``timeout``.
``connect`` returns the stream with the peer's certified replica id or raises
:class:`HandshakeFailed` (the dialer logs it per address, once per back-off doubling);
``accept`` returns ``(None, None, None)`` on a failure and logs it itself, naming the
peer's address and the cause (``wrong-key``: the peer holds another cluster key, or on
credentials a certificate not issued by this fleet's authority; ``not-tls``: it does not
speak TLS), once per doubling of that host's failures. On credentials the replica id is
not in the certificate: the handshake returns the peer certificate's key, which the
HELLO's credential must be for. Without a cluster key or an identity (``insecure``)
streams pass through unauthenticated.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
from collections import Counter

import trio

from memmesh.trust import MemberIdentity

from ._peers import at_doubling, format_address
from ._security import ClusterCredentials, SecurityError, peer_identity, peer_public_key
from .protocol import GossipError, HandshakeGate

__all__ = ["HandshakeFailed", "TlsLayer", "handshake_failure"]

log = logging.getLogger("memmesh.gossip")

#: (the stream, the peer's certified replica id (cluster key), the raw key of its
#: certificate (credentials: its HELLO credential must be for that key))
Secured = tuple[trio.abc.Stream | None, str | None, bytes | None]

#: OpenSSL reasons meaning the peer refused our certificate (it holds another key).
_REFUSED_OURS = frozenset({"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                           "TLSV1_ALERT_DECRYPT_ERROR", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
                           "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "CERTIFICATE_VERIFY_FAILED",
                           "PEER_DID_NOT_RETURN_A_CERTIFICATE"})
#: OpenSSL reasons meaning the peer does not speak TLS at all.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNEXPECTED_MESSAGE",
                      "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"})
#: Failures worth a WARNING (a misconfigured member); the rest (a closed or slow
#: connection: scanners, restarts) are INFO.
_WARN = frozenset({"wrong-key", "not-tls", "identity"})
_MAX_HOSTS = 1024
#: X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
_OUT_OF_DATE = frozenset({9, 10})


class HandshakeFailed(GossipError):
    """A TLS handshake failed.  ``kind``: ``wrong-key`` (the peer's certificate is not
    from this cluster's CA, or it refused ours: another cluster key), ``not-tls``,
    ``identity`` (a certificate without a valid replica id), ``timeout``, ``closed``
    (the connection ended during the handshake) or ``tls`` (another TLS error)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def handshake_failure(exc: BaseException, *, fleet: bool = False) -> HandshakeFailed:
    """What a handshake exception means, for an operator (trio reports TLS errors as a
    ``BrokenResourceError`` caused by the ``ssl.SSLError``); ``fleet``: the node runs on
    credentials (its trust anchor is the fleet's authority, not a cluster key)."""
    if isinstance(exc, trio.BrokenResourceError) and isinstance(exc.__cause__, ssl.SSLError):
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_code in _OUT_OF_DATE:
        return HandshakeFailed("identity", f"its certificate is not valid now "
                                           f"({exc.verify_message}): an expired member?")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HandshakeFailed("wrong-key", "its certificate is not issued by this fleet's "
                                            "authority" if fleet else
                                            "its certificate is not signed by this cluster's "
                                            "CA: it holds another cluster key")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _REFUSED_OURS:
            return HandshakeFailed("wrong-key", "it refused our certificate: ours is not "
                                                "issued by its fleet's authority" if fleet else
                                                "it refused our certificate: it holds "
                                                "another cluster key")
        if reason in _NOT_TLS:
            return HandshakeFailed("not-tls", "it does not speak TLS (an --insecure node, "
                                              "or another program on that port?)")
        if reason == "UNEXPECTED_EOF_WHILE_READING":
            return HandshakeFailed("closed", "the connection closed during the TLS handshake")
        return HandshakeFailed("tls", reason or type(exc).__name__)
    if isinstance(exc, SecurityError):
        return HandshakeFailed("identity", str(exc))
    if isinstance(exc, trio.TooSlowError):
        return HandshakeFailed("timeout", "no TLS handshake within the timeout")
    return HandshakeFailed("closed", "the connection closed during the TLS handshake "
                                     f"({type(exc).__name__})")


class TlsLayer:
    """The node's TLS handshakes; see the module docstring."""

    __slots__ = ("_cancel", "_client", "_counters", "_drops", "_failures", "_gate",
                 "_identity", "_key", "_logged", "_server", "timeout")

    def __init__(self, cluster_key: bytes | None, *, gate: HandshakeGate,
                 counters: Counter[str], timeout: float,
                 identity: MemberIdentity | None = None) -> None:
        self._key = cluster_key
        self._identity = identity
        self._gate = gate
        self._counters = counters
        self.timeout = timeout
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._cancel: dict[object, trio.CancelScope] = {}  # pending handshakes
        self._drops = 0  # not yet logged
        self._logged = -math.inf
        self._failures: Counter[str] = Counter()  # inbound failures per peer host

    @property
    def secure(self) -> bool:
        return self._key is not None or self._identity is not None

    async def start(self, replica_id: str) -> None:
        """Make this node's certificate under the cluster CA (off the event loop), or
        take the member's own on credentials."""
        if self._identity is not None:
            creds = ClusterCredentials.from_identity(self._identity)
        elif self._key is not None:
            creds = await trio.to_thread.run_sync(ClusterCredentials.create, self._key,
                                                  replica_id)
        if self.secure:
            self._server = creds.server_context()
            self._client = creds.client_context()

    async def accept(self, stream: trio.SocketStream,
                     peer: tuple[str, int] | None = None) -> Secured:
        """The server side of an inbound connection from ``peer`` (host, port), under the
        handshake gate; a failure is logged and gives ``(None, None)``."""
        if self._server is None:
            return stream, None, None
        key = object()
        with trio.CancelScope() as scope:
            self._cancel[key] = scope
            victim = self._gate.admit(key)
            if victim is not None:
                self._cancel.pop(victim).cancel()
                self._dropped()
            try:
                return await self._handshake(stream, self._server, server=True)
            except HandshakeFailed as failed:
                self._log_inbound(peer, failed)
                return None, None, None
            finally:
                self._gate.done(key)
                self._cancel.pop(key, None)
        await trio.aclose_forcefully(stream)
        return None, None, None

    async def connect(self, stream: trio.SocketStream) -> Secured:
        """The client side of a dialled connection (raises :class:`HandshakeFailed`)."""
        if self._client is None:
            return stream, None, None
        return await self._handshake(stream, self._client, server=False)

    async def _handshake(self, stream: trio.SocketStream, ctx: ssl.SSLContext, *,
                         server: bool) -> Secured:
        tls = trio.SSLStream(stream, ctx, server_side=server,
                             server_hostname=None if server else "memmesh")
        try:
            with trio.fail_after(self.timeout):
                await tls.do_handshake()
            if self._identity is not None:  # the replica id comes with the credential
                return tls, None, peer_public_key(tls)
            return tls, peer_identity(tls), None
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError,
                SecurityError) as exc:
            await _send_alert(tls)
            await trio.aclose_forcefully(tls)
            raise handshake_failure(exc, fleet=self._identity is not None) from None

    def _log_inbound(self, peer: tuple[str, int] | None, failed: HandshakeFailed) -> None:
        """One line per doubling of a host's failures: a member with the wrong key that
        redials every few seconds does not flood the log."""
        host = "?" if peer is None else peer[0]
        if len(self._failures) >= _MAX_HOSTS and host not in self._failures:
            self._failures.clear()
        self._failures[host] += 1
        count = self._failures[host]
        if at_doubling(count):
            where = "unknown address" if peer is None else format_address(*peer)
            level = logging.WARNING if failed.kind in _WARN else logging.INFO
            log.log(level, "peer %s: TLS handshake refused (%s): %s%s", where, failed.kind,
                    failed.detail, f" ({count} times from {host})" if count > 1 else "")

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


async def _send_alert(tls: trio.SSLStream[trio.SocketStream]) -> None:
    """Send the TLS alert OpenSSL queued when the handshake failed (trio raises before
    sending it), so the peer learns why: a member refusing our certificate then shows
    up on the other side as ``wrong-key``, not as a connection that just closed."""
    outgoing = getattr(tls, "_outgoing", None)  # trio's MemoryBIO towards the peer
    pending = outgoing.read() if isinstance(outgoing, ssl.MemoryBIO) else b""
    if pending:
        with trio.move_on_after(1), contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await tls.transport_stream.send_all(pending)

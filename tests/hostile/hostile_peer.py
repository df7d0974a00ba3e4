"""The byzantine peer of the hostile suite: a cluster-key holder that lies on purpose.

Its forgeries (crafted key states, forged payloads, a per-peer :class:`Forger`) come
from :mod:`memmesh.simulations.forgery`, the toolkit the ``byzantine`` scenario uses
too.  This module gives them a way onto the wire:

* :class:`~memmesh.simulations.forgery.ForgingReplica` (a real ``Replica`` whose
  ``sync_changes`` goes through a forger) is the byzantine member for bare replicas
  (the test calls ``sync_changes`` itself) and for a real trio ``Node`` (the node's own
  sync policy serves pulls and pushes from it): both targets get the same forgeries;
* :class:`RawPeer`, :func:`pipelined_pull`, :func:`hoard`: a real ``Session`` (or raw
  frames) over a TLS connection with a certificate minted from the cluster key for any
  replica id it likes, for the link-level cases (a second link under one id, partial
  frames).
"""

from __future__ import annotations

import contextlib
import ssl
import struct
import time
from collections import deque
from dataclasses import dataclass, field

import trio

from memmesh.crdt import packb
from memmesh.gossip import ClusterCredentials, cluster_fingerprint
from memmesh.gossip.protocol import RemoteProtocolError, Session, SessionConfig, encode_frame
from memmesh.gossip.protocol import events as ev
from memmesh.gossip.protocol.messages import PROTOCOL_VERSION, Hello, Syn, encode_message
from memmesh.simulations.forgery import payload


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------ raw links


async def tls_connect(port: int, rid: str, key: bytes) -> trio.SSLStream[trio.SocketStream]:
    """A TLS connection to ``port`` as replica ``rid``, with a certificate minted from
    the cluster ``key`` (any key holder can mint one for any id)."""
    ctx = ClusterCredentials.create(key, rid).client_context()
    tls = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx,
                         server_hostname="memmesh")
    await tls.do_handshake()
    return tls


def hello_frame(rid: str, key: bytes, *, max_frame: int = 4 * 1024 * 1024) -> bytes:
    """A HELLO frame of ``rid`` for the cluster of ``key`` (then the node is open)."""
    hello = Hello(PROTOCOL_VERSION, cluster_fingerprint(key), rid, 0, 8, max_frame, wall_ms())
    return encode_frame(encode_message(hello), cap=max_frame)


async def hoard(port: int, rid: str, key: bytes, held: int) -> trio.abc.Stream | None:
    """Case 10's attacker link: a key holder says HELLO, announces a 4 MiB frame and
    sends ``held`` bytes of it, then sits there.  None if the node dropped it first."""
    try:
        tls = await tls_connect(port, rid, key)
        await tls.send_all(hello_frame(rid, key) + struct.pack(">I", 4 * 1024 * 1024))
        await tls.send_all(bytes(held))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
        return None
    return tls


def empty_summary(rid: str) -> bytes:
    """A summary of a replica that holds nothing: a pull for everything."""
    return packb({"v": 1, "rid": rid, "wm": {}, "root": bytes(32)})


async def pipelined_pull(port: int, rid: str, key: bytes) -> bytes:
    """HELLO and a pull for everything in one write, without waiting for the node's
    answer (a link that is refused must not serve in between); every byte the node
    sent back until it hung up."""
    tls = await tls_connect(port, rid, key)
    syn = encode_frame(encode_message(Syn(1, empty_summary(rid), False)), cap=4 << 20)
    await tls.send_all(hello_frame(rid, key) + syn)
    got = bytearray()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while data := await tls.receive_some(65536):
            got += data
    await trio.aclose_forcefully(tls)
    return bytes(got)


@dataclass(eq=False)
class RawPeer:
    """A real :class:`Session` driven by hand over one stream (see module doc).

    It answers the node like a minimal member: an empty summary for pulls, empty
    changes when it is pulled, every data frame acknowledged (and kept in ``applied``),
    and the blobs queued with :meth:`push` as PUSH frames.  Run :meth:`serve` in a
    nursery; everything received is in ``received``, every event in ``events``.
    """

    rid: str
    stream: trio.abc.Stream
    session: Session
    received: bytearray = field(default_factory=bytearray)
    applied: list[bytes] = field(default_factory=list)
    events: list[ev.Event] = field(default_factory=list)
    pushes: deque[bytes] = field(default_factory=deque)
    pushed: int = 0

    @classmethod
    async def connect(cls, port: int, rid: str, key: bytes) -> RawPeer:
        stream = await tls_connect(port, rid, key)
        session = Session(replica_id=rid, fingerprint=cluster_fingerprint(key),
                          now=trio.current_time(), wall_ms=wall_ms(),
                          config=SessionConfig(retransmit=False))
        return cls(rid, stream, session)

    @property
    def summary(self) -> bytes:
        return empty_summary(self.rid)

    @property
    def opened(self) -> bool:
        """The handshake is done and the link is still open."""
        return self.session.peer is not None and not self.session.closed

    @property
    def rejected(self) -> str | None:
        return next((e.reason for e in self.events if isinstance(e, ev.PeerRejected)), None)

    def pull(self) -> None:
        """Ask the node for everything (an empty summary)."""
        if not self.session.closed and not self.session.pulling:
            self.session.start_sync(self.summary, trio.current_time())

    def push(self, data: bytes) -> None:
        """Send ``data`` as a PUSH frame as soon as the node's summary is known."""
        self.pushes.append(data)
        if not self.session.request_push(trio.current_time()):
            self.pull()  # the node pulls back: then its summary is known

    async def serve(self) -> None:
        """Move bytes and answer events until the link closes."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers)
            await self._flush()
            while not self.session.closed:
                try:
                    data = bytes(await self.stream.receive_some(65536))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                self.received += data
                with contextlib.suppress(RemoteProtocolError):  # the node broke the rules
                    self.session.receive_data(data, trio.current_time())
                await self._answer()
            nursery.cancel_scope.cancel()

    async def _timers(self) -> None:
        while not self.session.closed:
            deadline = self.session.next_deadline()
            if deadline is None:
                return
            await trio.sleep_until(deadline)
            self.session.handle_timeout(trio.current_time())
            await self._answer()

    async def _answer(self) -> None:
        s, now = self.session, trio.current_time()
        while (e := s.next_event()) is not None:
            self.events.append(e)
            match e:
                case ev.NeedSummary():
                    s.start_sync(self.summary, now, reply=True)
                case ev.NeedChanges(request=request, purpose="push") if self.pushes:
                    s.changes_ready(request, self.pushes.popleft(), now)
                    self.pushed += 1
                case ev.NeedChanges(request=request):
                    s.changes_ready(request, payload(self.rid), now)
                case ev.ApplyChanges(n=n, data=data):
                    self.applied.append(data)
                    s.applied(n, now)
        if self.pushes and s.peer_summary is not None and not s.closed:
            s.request_push(now)
        await self._flush()

    async def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.session.close()

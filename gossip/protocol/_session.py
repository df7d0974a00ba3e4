"""One peer link's protocol state machine, sans-IO (the h11 model).

A :class:`Session` consumes received bytes and the current time and produces bytes to
send, :mod:`.events` and a timer deadline; it owns no socket, reads no clock and never
touches storage: replica work is requested through events and answered through methods.
It composes the link's three jobs: :mod:`._handshake` (HELLO both ways, a state table of
phases), :mod:`._exchange` (push-pull anti-entropy as in Scuttlebutt and Corrosion: SYN,
streamed CHANGES chunks, PUSH of new writes) and :mod:`._delivery` (numbered, windowed,
acknowledged data frames, resent on a lossy transport). The session itself keeps the
link alive (PING/PONG; idle and stalled-frame timeouts) and closes it on any protocol
error with BYE, or REJECT before the handshake (docs/internals.md, section 3).
"""

from __future__ import annotations

from memmesh.trust import Credential, TrustStore

from . import events as ev
from . import messages as wire
from ._config import SessionConfig
from ._delivery import Delivery
from ._errors import LocalProtocolError, RemoteProtocolError
from ._exchange import Chunk, Exchange
from ._frames import FrameDecoder
from ._handshake import CREDENTIAL_HANDSHAKE_FRAME, HANDSHAKE_FRAME, Handshake, Phase, State
from ._outbox import Outbox

__all__ = ["Session"]


class Session:
    """The protocol state of one link; see the module docstring for the protocol.

    Driving it (any transport, any clock)::

        s = Session(replica_id=rid, fingerprint=fp, now=t)
        send(s.data_to_send())                # our HELLO
        s.receive_data(bytes_from_peer, now)  # may raise RemoteProtocolError
        while (e := s.next_event()) is not None:
            ...                               # do what the event asks (events.py)
        send(s.data_to_send())
        at time s.next_deadline(): s.handle_timeout(now); send(s.data_to_send())
    """

    def __init__(
        self,
        *,
        replica_id: str,
        fingerprint: bytes,
        now: float,
        config: SessionConfig | None = None,
        port: int = 0,
        expected_peer_id: str | None = None,
        wall_ms: int = 0,
        credential: bytes | None = None,
        trust: TrustStore | None = None,
        expected_peer_key: bytes | None = None,
    ) -> None:
        if not replica_id:
            raise LocalProtocolError("replica_id must not be empty")
        self.config = config if config is not None else SessionConfig()
        self.replica_id = replica_id
        self.fingerprint = fingerprint
        self.expected_peer_id = expected_peer_id
        self.bytes_received = 0
        self.close_reason: str | None = None
        self._now = now  # the time of the latest call, for the calls that take none
        self._last_recv = now
        self._ping_nonce = 0
        first = HANDSHAKE_FRAME if trust is None else CREDENTIAL_HANDSHAKE_FRAME
        self._decoder = FrameDecoder(min(first, self.config.max_frame))
        self._out = Outbox(cap=self.config.max_frame, now=now)
        hello = wire.Hello(wire.PROTOCOL_VERSION, fingerprint, replica_id, port,
                           self.config.window, self.config.max_frame, max(0, wall_ms),
                           credential)
        self._handshake = Handshake(self._out, hello, config=self.config,
                                    expected_peer_id=expected_peer_id, now=now, trust=trust,
                                    expected_peer_key=expected_peer_key)
        self._delivery: Delivery[Chunk | None] = Delivery(self._out, self.config)
        self._exchange = Exchange(self._out, self._delivery, self.config, replica_id)

    # ------------------------------------------------------------------ outputs

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport, in order; empties the buffer."""
        return self._out.take()

    def next_event(self) -> ev.Event | None:
        """The oldest undelivered event, or None."""
        return self._out.next_event()

    def events(self) -> list[ev.Event]:
        """All undelivered events (drains the queue)."""
        return self._out.drain()

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must be called next (None: never)."""
        cfg = self.config
        if self.closed:
            return None
        if not self._handshake.is_open:
            return self._handshake.deadline()
        times = [self._last_recv + cfg.idle_timeout, self._out.last_send + cfg.keepalive]
        if self._decoder.buffered:
            times.append(self._last_recv + cfg.frame_timeout)
        for t in (self._delivery.deadline(), self._exchange.deadline()):
            if t is not None:
                times.append(t)
        return min(times)

    @property
    def state(self) -> State:
        return self._handshake.phase.state

    @property
    def phase(self) -> Phase:
        """The handshake's sub-state (``state`` is its coarse view)."""
        return self._handshake.phase

    @property
    def peer(self) -> wire.Hello | None:
        """The peer's HELLO once the link opened."""
        return self._handshake.peer

    @property
    def peer_credential(self) -> Credential | None:
        """The peer's admitted credential once the link opened (credential mode)."""
        return self._handshake.credential

    @property
    def peer_summary(self) -> bytes | None:
        """Last summary known for the peer (its SYN, advanced by what we sent it)."""
        return self._exchange.peer_summary

    @property
    def bytes_sent(self) -> int:
        return self._out.bytes_sent

    @property
    def closed(self) -> bool:
        """True once the session reached ``CLOSED`` (it never leaves it)."""
        return self._handshake.phase is Phase.CLOSED

    @property
    def pulling(self) -> bool:
        """True while our own pull (a SYN of ours) is running."""
        return self._exchange.pulling

    @property
    def serving(self) -> bool:
        """True while we stream changes for the peer's pull."""
        return self._exchange.serving

    @property
    def receiving(self) -> bool:
        """Data frames from the peer are waiting to be applied."""
        return self._delivery.receiving

    @property
    def buffered(self) -> int:
        """Bytes of a frame still arriving (held for the peer, not yet a message)."""
        return self._decoder.buffered

    @property
    def pending_bytes(self) -> int:
        """Bytes of received data frames not yet applied (held, or with the caller)."""
        return self._delivery.pending_bytes

    @property
    def has_data_to_send(self) -> bool:
        return self._out.has_bytes

    @property
    def idle(self) -> bool:
        """No data in flight or queued and no sync running."""
        return self._delivery.idle and self._exchange.idle

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes received from the peer (``b""`` is end of stream).

        Raises :class:`RemoteProtocolError` after closing the session when the peer
        broke the protocol; the queued ``BYE``/``REJECT`` should still be flushed.
        """
        self._now = now
        if self.closed:
            return
        if not data:
            self._closed("closing", "peer closed the stream", error=True)
            return
        self.bytes_received += len(data)
        self._last_recv = now
        try:
            self._decoder.append(data)
            while (body := self._decoder.next_frame()) is not None:
                msg = wire.decode_message(body)
                nxt = self._handshake.step(msg)
                if nxt is None:
                    continue
                self._dispatch(msg, now)
                if self.closed:
                    return
                self._handshake.enter(nxt)
        except RemoteProtocolError as exc:
            self._fail(exc.reason, str(exc))
            raise

    def _dispatch(self, msg: wire.Message, now: float) -> None:
        """Do what ``msg`` asks; the handshake's table already admitted it."""
        match msg:
            case wire.Hello():
                if self._handshake.receive_hello(msg, now):
                    self._decoder.cap = self.config.max_frame
                    self._out.cap = msg.max_frame
                    self._delivery.open(msg.window)
                    self._exchange.open(msg)
                    self._out.emit(ev.HandshakeComplete(msg.replica_id, msg.port,
                                                        msg.version, msg.wall_ms))
            case wire.Reject(sync_id=0):
                self._out.emit(ev.PeerRejected(msg.reason, msg.detail))
                self._closed(msg.reason, "peer rejected the link", error=True)
            case wire.Reject():
                if not self._handshake.is_open:
                    raise RemoteProtocolError("sync REJECT before the handshake")
                self._exchange.on_sync_reject(msg)
            case wire.Syn():
                self._exchange.on_syn(msg)
            case wire.Changes():
                self._exchange.on_changes(msg, now)
            case wire.Push():
                self._exchange.on_push(msg, now)
            case wire.Ack():
                if self._delivery.ack(msg.n, now):
                    self._exchange.window_opened()
            case wire.Ping():
                self._out.send(wire.Pong(msg.nonce), now)
            case wire.Pong():
                pass  # receiving anything refreshes liveness
            case wire.Bye():
                self._closed(msg.reason, "peer said goodbye", error=msg.reason != "closing")

    def handle_timeout(self, now: float) -> None:
        """Fire whatever timers are due at ``now`` (retransmit, keepalive, timeouts)."""
        self._now = now
        cfg = self.config
        if self.closed:
            return
        if not self._handshake.is_open:
            if self._handshake.on_timeout(now):
                self._fail("timeout", "handshake timed out")
            return
        if now >= self._last_recv + cfg.idle_timeout:
            self._fail("timeout", "peer silent")
        elif self._decoder.buffered and now >= self._last_recv + cfg.frame_timeout:
            self._fail("timeout", "a partial frame stopped arriving")
        elif not self._delivery.retransmit(now):
            self._fail("timeout", "data frame never acknowledged")
        elif not self._exchange.on_timeout(now):
            self._fail("timeout", "pull got no answer")
        elif now >= self._out.last_send + cfg.keepalive:
            self._ping_nonce += 1
            self._out.send(wire.Ping(self._ping_nonce), now)

    # ------------------------------------------------------------------ commands

    def start_sync(self, summary: bytes, now: float, *, reply: bool = False) -> int:
        """Pull from the peer: send ``SYN(summary)``; returns the sync id."""
        self._now = now
        self._require_open("start_sync")
        return self._exchange.start_sync(summary, now, reply=reply)

    def request_push(self, now: float, *, priority: bool = False,
                     local_summary: bytes | None = None) -> bool:
        """Ask for a ``NeedChanges(purpose="push")`` against the peer's last summary.

        With ``local_summary`` (our own current ``sync_summary()``) the push is limited
        to this replica's own writes (:func:`.summary.push_summary`): no relaying.
        Returns False when no summary of the peer is known yet (pull first instead).
        Calls while a push is being computed coalesce into one more push afterwards.
        """
        self._now = now
        self._require_open("request_push")
        return self._exchange.request_push(priority=priority, local_summary=local_summary)

    def changes_ready(self, request: int, data: bytes, now: float) -> None:
        """Answer a :class:`NeedChanges` with the bytes ``sync_changes`` returned."""
        self._now = now
        if self.closed:
            self._exchange.forget(request)
            return
        self._exchange.changes_ready(request, data, now)

    def refuse(self, request: int, reason: str = "busy") -> None:
        """Decline the peer's pull announced by a first ``NeedChanges(purpose="serve")``."""
        _check_reason(reason)
        self._exchange.refuse(request, reason, self._now)

    def applied(self, n: int, now: float) -> None:
        """Data frame ``n`` (an :class:`ApplyChanges`) was applied: acknowledge it."""
        self._now = now
        if not self.closed:
            self._exchange.applied(n, now)

    def apply_failed(self, n: int, now: float) -> None:
        """Frame ``n`` held invalid changes (``sync_apply`` raised): drop the link."""
        self._now = now
        self._fail("invalid-changes", "peer sent changes that failed validation")

    def reject(self, reason: str) -> None:
        """Refuse the link right after the handshake (``busy``, ``duplicate``...)."""
        _check_reason(reason)
        if not self.closed:
            self._out.send(wire.Reject(reason, 0, ""), self._now)
            self._closed(reason, "rejected locally", error=False)

    def close(self, reason: str = "closing") -> None:
        """Say goodbye and close (idempotent)."""
        _check_reason(reason)
        if not self.closed:
            self._out.send(wire.Bye(reason), self._now)
            self._closed(reason, "closed locally", error=False)

    # ------------------------------------------------------------------ closing

    def _require_open(self, what: str) -> None:
        if not self._handshake.is_open:
            raise LocalProtocolError(f"{what} needs an open session, not {self.state.value}")

    def _fail(self, reason: str, detail: str) -> None:
        if self.closed:
            return
        detail = detail[:200]
        before_hello = not self._handshake.is_open
        self._out.send(wire.Reject(reason, 0, detail) if before_hello else wire.Bye(reason),
                       self._now)
        self._closed(reason, detail, error=True)

    def _closed(self, reason: str, detail: str, *, error: bool) -> None:
        self._handshake.enter(Phase.CLOSED)
        self.close_reason = reason
        self._exchange.close()
        self._delivery.clear()
        self._decoder = FrameDecoder(1)  # drop any partial frame now
        self._out.emit(ev.ConnectionClosed(reason, detail, error))


def _check_reason(reason: str) -> None:
    if reason not in wire.REASONS:
        raise LocalProtocolError(f"unknown reason code {reason!r}")

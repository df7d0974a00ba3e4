"""One peer link's protocol state machine, sans-IO (the h11 model).

A :class:`Session` consumes received bytes and the current time and produces bytes to
send, :mod:`events <memmesh.gossip.protocol.events>` and a timer deadline.  It owns no
socket, reads no clock, draws no random numbers and never touches storage: work on the
replica is *requested* through events and *answered* through methods.

Protocol (one round of anti-entropy is push-pull, after Scuttlebutt and Corrosion):

1. Both ends send ``HELLO(version, cluster fingerprint, replica id, port, window,
   max frame, wall clock)`` at once; a mismatch is answered by ``REJECT(version |
   wrong-cluster | identity | self)``.  The replica id must equal the authenticated
   identity the caller passes as ``expected_peer_id`` (the TLS certificate's name).
   Until the HELLO is in, frames are capped at ``HANDSHAKE_FRAME`` bytes, so a peer
   that has not even said who it is cannot make us buffer a large frame.  On a lossy
   transport (``retransmit``) an open end answers a repeated HELLO with its own (the
   peer evidently lost it), and frames that overtook the peer's HELLO are dropped.
2. A pulls: ``SYN(id, summary_A)``.  B streams ``CHANGES`` chunks, each one computed
   for ``summary_A`` advanced past the previous chunks (:mod:`.summary`), each at most
   ``chunk_bytes``, numbered, ``ACK``-ed by A once applied, with at most ``window``
   unacknowledged (flow control: a slow applier slows the sender).  The last chunk
   says ``last`` and how many chunks there were; ``more`` asks A to pull again soon.
   B, if it is not already pulling, pulls from A in turn (``SYN(reply=True)``), so one
   round moves data both ways.  A busy B answers ``REJECT(busy, id)`` instead.
   A hands the chunks of its pull to its caller *in chunk order*, each only after the
   one before it was applied (Scuttlebutt's rule: an origin's deltas in version order
   without gaps), since each chunk's ``through`` claims start where the previous
   chunk's end; a chunk that overtook its predecessor on the wire waits.
3. New local writes are pushed at once as ``PUSH`` frames computed against the last
   summary known for the peer; priority pushes jump the send queue.
4. ``PING``/``PONG`` keep idle links alive; lost frames are retransmitted after
   ``rto`` (needed only on lossy transports; duplicates are harmless because every
   frame number is applied at most once and CRDT joins are idempotent anyway).  A
   frame that stops arriving half way (no byte for ``frame_timeout``) closes the link:
   a partial frame is memory held for the peer.

The state machine is table driven: ``_TRANSITIONS[(state, message type)]`` names the
handler; any message absent from the table is a :class:`RemoteProtocolError`.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from . import events as ev
from .errors import LocalProtocolError, RemoteProtocolError
from .frames import FrameDecoder, encode_frame
from .messages import (
    PROTOCOL_VERSION,
    REASONS,
    Ack,
    Bye,
    Changes,
    Hello,
    Message,
    Ping,
    Pong,
    Push,
    Reject,
    Syn,
    decode_message,
    encode_message,
)
from .summary import advance_summary, asks_repair, changes_empty, push_summary

__all__ = ["HANDSHAKE_FRAME", "PROTOCOL_VERSION", "Session", "SessionConfig", "State"]

#: Largest frame body accepted before the peer's HELLO (a HELLO or a REJECT fits).
HANDSHAKE_FRAME: Final = 1024

#: Room kept in a frame for the message envelope around a changes blob.
_ENVELOPE: Final = 256


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Tunables of one link (times in seconds of the caller's clock)."""

    window: int = 8
    max_frame: int = 4 * 1024 * 1024
    chunk_bytes: int = 256 * 1024
    max_chunks_per_sync: int = 256
    rto: float = 5.0
    max_retries: int = 4
    handshake_timeout: float = 10.0
    keepalive: float = 5.0
    idle_timeout: float = 30.0
    frame_timeout: float = 15.0
    retransmit: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 4096:
            raise LocalProtocolError("window must be within 1..4096")
        if not 64 <= self.max_frame <= 2**31:
            raise LocalProtocolError("max_frame must be within 64..2**31")
        if not 1 <= self.chunk_bytes <= self.max_frame - _ENVELOPE:
            raise LocalProtocolError("chunk_bytes must fit in a frame")
        if self.max_chunks_per_sync < 1 or self.max_retries < 0:
            raise LocalProtocolError("max_chunks_per_sync >= 1 and max_retries >= 0")
        for name in ("rto", "handshake_timeout", "keepalive", "idle_timeout",
                     "frame_timeout"):
            if not getattr(self, name) > 0:
                raise LocalProtocolError(f"{name} must be positive")


@dataclass(slots=True)
class _Sent:
    frame: bytes
    sent_at: float
    retries: int = 0


@dataclass(slots=True)
class _Queued:
    """A data frame waiting for window room; its number is given when it is sent."""

    sync_id: int  # 0 for PUSH
    index: int = 0
    data: bytes = b""
    last: bool = False
    total: int = 0
    more: bool = False
    priority: bool = False

    def build(self, n: int) -> Message:
        if self.sync_id == 0:
            return Push(n, self.data, self.priority)
        return Changes(n, self.sync_id, self.index, self.data, self.last, self.total, self.more)


@dataclass(slots=True)
class _Pull:
    sync_id: int
    syn: Syn
    activity: float
    retries: int = 0
    applied: set[int] = field(default_factory=set)
    total: int | None = None
    more: bool = False
    held: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # index -> (n, data)


@dataclass(slots=True)
class _Serve:
    sync_id: int
    summary: bytes
    index: int = 0
    request: int | None = None
    waiting: bool = False
    repair: bool = False  # the peer's summary asks for digest repair


@dataclass(frozen=True, slots=True)
class _RecvInfo:
    sync_id: int | None
    index: int
    last: bool
    total: int
    more: bool


Handler = Callable[["Session", Message], None]


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
    ) -> None:
        if not replica_id:
            raise LocalProtocolError("replica_id must not be empty")
        self.config = config if config is not None else SessionConfig()
        self.replica_id = replica_id
        self.fingerprint = fingerprint
        self.expected_peer_id = expected_peer_id
        self.state = State.HANDSHAKE
        self.peer: Hello | None = None
        #: Last summary known for the peer (its SYN, advanced by what we sent it).
        self.peer_summary: bytes | None = None
        self.bytes_sent = 0
        self.bytes_received = 0
        self.close_reason: str | None = None
        self._now = now
        self._created = now
        self._last_recv = now
        self._last_send = now
        self._out = bytearray()
        self._events: deque[ev.Event] = deque()
        self._decoder = FrameDecoder(min(HANDSHAKE_FRAME, self.config.max_frame))
        self._hello = Hello(
            PROTOCOL_VERSION, fingerprint, replica_id, port, self.config.window,
            self.config.max_frame, max(0, wall_ms),
        )
        self._hello_sent = now
        self._peer_spoke = False
        # sending data frames
        self._next_n = 1
        self._inflight: dict[int, _Sent] = {}
        self._queue: deque[_Queued] = deque()
        # receiving data frames
        self._recv_floor = 0
        self._recv_done: set[int] = set()
        self._recv_pending: dict[int, tuple[_RecvInfo | None, int]] = {}  # n -> info, size
        self._pending_bytes = 0
        # syncs and requests
        self._next_sync = 1
        self._peer_sync_hi = 0
        self._pull: _Pull | None = None
        self._serve: _Serve | None = None
        self._next_req = 1
        self._requests: dict[int, tuple[str, int]] = {}
        self._push_req: int | None = None
        self._push_again = False
        self._push_again_priority = False
        self._push_priority_current = False
        self._push_local: bytes | None = None
        self._ping_nonce = 0
        self._send(self._hello)

    # ------------------------------------------------------------------ outputs

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport, in order; empties the buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ev.Event | None:
        """The oldest undelivered event, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[ev.Event]:
        """All undelivered events (drains the queue)."""
        out = list(self._events)
        self._events.clear()
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must be called next (None: never)."""
        cfg = self.config
        if self.state is State.CLOSED:
            return None
        if self.state is State.HANDSHAKE:
            end = self._created + cfg.handshake_timeout
            return min(end, self._hello_sent + cfg.rto) if cfg.retransmit else end
        times = [self._last_recv + cfg.idle_timeout, self._last_send + cfg.keepalive]
        if self._decoder.buffered:
            times.append(self._last_recv + cfg.frame_timeout)
        if self._inflight:
            times.append(min(s.sent_at for s in self._inflight.values()) + self._patience())
        if self._pull is not None:
            times.append(self._pull.activity + self._patience())
        return min(times)

    @property
    def closed(self) -> bool:
        """True once the session reached ``CLOSED`` (it never leaves it)."""
        return self.state is State.CLOSED

    @property
    def pulling(self) -> bool:
        """True while our own pull (a SYN of ours) is running."""
        return self._pull is not None

    @property
    def serving(self) -> bool:
        """True while we stream changes for the peer's pull."""
        return self._serve is not None

    @property
    def receiving(self) -> bool:
        """Data frames from the peer are waiting to be applied."""
        return bool(self._recv_pending)

    @property
    def buffered(self) -> int:
        """Bytes of a frame still arriving (held for the peer, not yet a message)."""
        return self._decoder.buffered

    @property
    def pending_bytes(self) -> int:
        """Bytes of received data frames not yet applied (held, or with the caller)."""
        return self._pending_bytes

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    @property
    def idle(self) -> bool:
        """No data in flight or queued and no sync running."""
        return not (self._inflight or self._queue or self._pull or self._serve
                    or self._recv_pending or self._push_req is not None)

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes received from the peer (``b""`` is end of stream).

        Raises :class:`RemoteProtocolError` after closing the session when the peer
        broke the protocol; the queued ``BYE``/``REJECT`` should still be flushed.
        """
        self._now = now
        if self.state is State.CLOSED:
            return
        if not data:
            self._closed("closing", "peer closed the stream", error=True)
            return
        self.bytes_received += len(data)
        self._last_recv = now
        try:
            self._decoder.append(data)
            while (body := self._decoder.next_frame()) is not None:
                msg = decode_message(body)
                handler = _TRANSITIONS.get((self.state, type(msg)))
                if handler is None and self._overtook_hello(msg):
                    continue
                if handler is None:
                    raise RemoteProtocolError(
                        f"{type(msg).__name__} not allowed in state {self.state.value}"
                    )
                if self.state is State.OPEN and not isinstance(msg, Hello):
                    self._peer_spoke = True  # it is open too: it has our HELLO
                handler(self, msg)
                if self.closed:
                    return
        except RemoteProtocolError as exc:
            self._fail(exc.reason, str(exc))
            raise

    def handle_timeout(self, now: float) -> None:
        """Fire whatever timers are due at ``now`` (retransmit, keepalive, timeouts)."""
        self._now = now
        cfg = self.config
        if self.state is State.CLOSED:
            return
        if self.state is State.HANDSHAKE:
            if now >= self._created + cfg.handshake_timeout:
                self._fail("timeout", "handshake timed out")
            elif cfg.retransmit and now >= self._hello_sent + cfg.rto:
                self._hello_sent = now
                self._send(self._hello)
            return
        if now >= self._last_recv + cfg.idle_timeout:
            self._fail("timeout", "peer silent")
            return
        if self._decoder.buffered and now >= self._last_recv + cfg.frame_timeout:
            self._fail("timeout", "a partial frame stopped arriving")
            return
        for sent in self._inflight.values():
            if now >= sent.sent_at + self._patience():
                if sent.retries >= cfg.max_retries or not cfg.retransmit:
                    self._fail("timeout", "data frame never acknowledged")
                    return
                sent.retries += 1
                sent.sent_at = now
                self._write(sent.frame)
        pull = self._pull
        if pull is not None and now >= pull.activity + self._patience():
            if pull.retries >= cfg.max_retries or not cfg.retransmit:
                self._fail("timeout", "pull got no answer")
                return
            pull.retries += 1
            pull.activity = now
            self._send(pull.syn)
        if now >= self._last_send + cfg.keepalive:
            self._ping_nonce += 1
            self._send(Ping(self._ping_nonce))

    # ------------------------------------------------------------------ commands

    def start_sync(self, summary: bytes, now: float, *, reply: bool = False) -> int:
        """Pull from the peer: send ``SYN(summary)``; returns the sync id."""
        self._now = now
        self._require_open("start_sync")
        if self._pull is not None:
            raise LocalProtocolError("a pull is already running on this link")
        syn = Syn(self._next_sync, summary, reply)
        self._check_size(syn)
        self._next_sync += 1
        self._pull = _Pull(syn.sync_id, syn, now)
        self._send(syn)
        return syn.sync_id

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
        if self.peer_summary is None:
            return False
        if local_summary is not None:
            self._push_local = local_summary
        self._push_again = True
        self._push_again_priority |= priority
        self._maybe_request_push()
        return True

    def changes_ready(self, request: int, data: bytes, now: float) -> None:
        """Answer a :class:`NeedChanges` with the bytes ``sync_changes`` returned."""
        self._now = now
        if self.state is State.CLOSED:
            self._requests.pop(request, None)
            return
        try:
            purpose, sync_id = self._requests[request]
        except KeyError:
            raise LocalProtocolError(f"no outstanding request {request}") from None
        assert self.peer is not None
        if len(data) > self.peer.max_frame - _ENVELOPE:
            raise LocalProtocolError(f"changes of {len(data)} bytes do not fit a frame")
        del self._requests[request]
        if purpose == "push":
            self._push_req = None
            if not changes_empty(data):
                prio = self._push_priority_current
                item = _Queued(0, data=data, priority=prio)
                if prio:
                    self._queue.appendleft(item)
                else:
                    self._queue.append(item)
                nxt = None if self.peer_summary is None else advance_summary(
                    self.peer_summary, data)
                if nxt is not None:
                    # keep pushing until the peer is known to hold everything we have
                    self.peer_summary = nxt
                    self._push_again = True
                    self._push_again_priority |= prio
                self._pump()
            self._maybe_request_push()
            return
        serve = self._serve
        if serve is None or serve.sync_id != sync_id or serve.request != request:
            return  # superseded by a newer SYN of the peer
        serve.request = None
        # the first answer to a repair pull goes out even when empty: its envelope tells
        # the puller which scope we serve it, the scope its digest must be summed over
        empty = changes_empty(data)
        if empty and not (serve.repair and serve.index == 0):
            self._queue.append(_Queued(sync_id, serve.index, b"", True, serve.index + 1))
            self._serve = None
        else:
            nxt = None if empty else advance_summary(serve.summary, data)
            if nxt is not None:
                self.peer_summary = nxt
            final = nxt is None or serve.index + 1 >= self.config.max_chunks_per_sync
            self._queue.append(
                _Queued(sync_id, serve.index, data, final, serve.index + 1 if final else 0,
                        more=final and not empty)
            )
            serve.index += 1
            if final:
                self._serve = None
            else:
                assert nxt is not None
                serve.summary = nxt
        self._pump()
        if self._serve is not None:
            self._request_serve_chunk(first=False)

    def refuse(self, request: int, reason: str = "busy") -> None:
        """Decline the peer's pull announced by a first ``NeedChanges(purpose="serve")``."""
        _check_reason(reason)
        entry = self._requests.get(request)
        if entry is None or entry[0] != "serve":
            raise LocalProtocolError(f"request {request} is not a serve request")
        del self._requests[request]
        if self.state is State.CLOSED:
            return
        serve = self._serve
        if serve is not None and serve.request == request:
            self._serve = None
            self._send(Reject(reason, entry[1], ""))

    def applied(self, n: int, now: float) -> None:
        """Data frame ``n`` (an :class:`ApplyChanges`) was applied: acknowledge it."""
        self._now = now
        if self.state is State.CLOSED:
            return
        if n not in self._recv_pending or self._is_held(n):
            raise LocalProtocolError(f"frame {n} is not awaiting application")
        info, size = self._recv_pending.pop(n)
        self._pending_bytes -= size
        if self._pull is not None:
            self._pull.activity = now
        self._done(n, info)
        self._send(Ack(n))

    def apply_failed(self, n: int, now: float) -> None:
        """Frame ``n`` held invalid changes (``sync_apply`` raised): drop the link."""
        self._now = now
        if self.state is not State.CLOSED:
            self._fail("invalid-changes", "peer sent changes that failed validation")

    def reject(self, reason: str) -> None:
        """Refuse the link right after the handshake (``busy``, ``duplicate``...)."""
        _check_reason(reason)
        if self.state is State.CLOSED:
            return
        self._send(Reject(reason, 0, ""))
        self._closed(reason, "rejected locally", error=False)

    def close(self, reason: str = "closing") -> None:
        """Say goodbye and close (idempotent)."""
        _check_reason(reason)
        if self.state is State.CLOSED:
            return
        self._send(Bye(reason))
        self._closed(reason, "closed locally", error=False)

    # ------------------------------------------------------------------ handlers

    def _on_hello(self, msg: Message) -> None:
        assert isinstance(msg, Hello)
        if msg.version != PROTOCOL_VERSION:
            raise RemoteProtocolError(f"protocol version {msg.version}", reason="version")
        if msg.fingerprint != self.fingerprint:
            raise RemoteProtocolError("different cluster", reason="wrong-cluster")
        if msg.replica_id == self.replica_id:
            raise RemoteProtocolError("connected to ourselves", reason="self")
        if self.expected_peer_id is not None and msg.replica_id != self.expected_peer_id:
            raise RemoteProtocolError("replica id differs from the certificate",
                                      reason="identity")
        self.peer = msg
        self.state = State.OPEN
        self._decoder.cap = self.config.max_frame
        self._events.append(ev.HandshakeComplete(msg.replica_id, msg.port, msg.version,
                                                 msg.wall_ms))

    def _on_repeated_hello(self, msg: Message) -> None:
        if msg != self.peer:
            raise RemoteProtocolError("a second, different HELLO")
        # the peer repeats its HELLO: it may lack ours (a network duplicate looks the
        # same, so at most once per rto, and never once it sent anything else)
        if self.config.retransmit and not self._peer_spoke \
                and self._now >= self._hello_sent + self.config.rto:
            self._hello_sent = self._now
            self._send(self._hello)

    def _overtook_hello(self, msg: Message) -> bool:
        """On a transport that loses and reorders frames, a frame of the open state can
        overtake the peer's HELLO (or ours was lost and it is already open): drop it
        rather than fail the link, the peer sends it again.  Over a stream (no
        retransmission) it stays a protocol error."""
        return (self.config.retransmit and self.state is State.HANDSHAKE
                and (State.OPEN, type(msg)) in _TRANSITIONS)

    def _on_reject(self, msg: Message) -> None:
        assert isinstance(msg, Reject)
        if msg.sync_id:
            if self.state is State.HANDSHAKE:
                raise RemoteProtocolError("sync REJECT before the handshake")
            if self._pull is not None and self._pull.sync_id == msg.sync_id:
                self._pull = None
                self._events.append(ev.SyncRejected(msg.sync_id, msg.reason))
            return
        self._events.append(ev.PeerRejected(msg.reason, msg.detail))
        self._closed(msg.reason, "peer rejected the link", error=True)

    def _on_syn(self, msg: Message) -> None:
        assert isinstance(msg, Syn)
        if msg.sync_id <= self._peer_sync_hi:
            return  # a duplicate or a stale retransmission
        self._peer_sync_hi = msg.sync_id
        self.peer_summary = msg.summary
        if self._serve is not None:
            old = self._serve.sync_id
            self._queue = deque(q for q in self._queue if q.sync_id != old)
        self._serve = _Serve(msg.sync_id, msg.summary, repair=asks_repair(msg.summary))
        self._request_serve_chunk(first=True)
        if not msg.reply and self._pull is None:
            self._events.append(ev.NeedSummary())

    def _on_changes(self, msg: Message) -> None:
        assert isinstance(msg, Changes)
        if msg.sync_id >= self._next_sync:
            raise RemoteProtocolError("CHANGES for a sync we never started")
        if msg.last and msg.total != msg.index + 1:
            raise RemoteProtocolError("inconsistent chunk total")
        if msg.index >= self.config.max_chunks_per_sync * 16:
            raise RemoteProtocolError("chunk index out of range")
        pull = self._pull
        if pull is not None and pull.sync_id == msg.sync_id:
            pull.activity = self._now
            pull.retries = 0
        info = _RecvInfo(msg.sync_id, msg.index, msg.last, msg.total, msg.more)
        self._receive_frame(msg.n, msg.data, info, priority=False)

    def _on_push(self, msg: Message) -> None:
        assert isinstance(msg, Push)
        self._receive_frame(msg.n, msg.data, None, priority=msg.priority)

    def _on_ack(self, msg: Message) -> None:
        assert isinstance(msg, Ack)
        if self._inflight.pop(msg.n, None) is None:
            if msg.n >= self._next_n:
                raise RemoteProtocolError("ACK of a frame never sent")
            return  # duplicate ACK
        self._pump()
        serve = self._serve
        if serve is not None and serve.waiting:
            self._request_serve_chunk(first=False)
        self._maybe_request_push()

    def _on_ping(self, msg: Message) -> None:
        assert isinstance(msg, Ping)
        self._send(Pong(msg.nonce))

    def _on_pong(self, msg: Message) -> None:
        pass  # receiving anything refreshes liveness

    def _on_bye(self, msg: Message) -> None:
        assert isinstance(msg, Bye)
        self._closed(msg.reason, "peer said goodbye", error=msg.reason != "closing")

    # ------------------------------------------------------------------ helpers

    def _maybe_request_push(self) -> None:
        # priority pushes may queue up to one extra window: they jump the queue anyway
        limit = self._send_window() * (2 if self._push_again_priority else 1)
        if (not self._push_again or self._push_req is not None or self.peer_summary is None
                or len(self._queue) >= limit):
            return
        assert self.peer is not None
        req = self._next_req
        self._next_req += 1
        self._requests[req] = ("push", 0)
        self._push_req = req
        self._push_priority_current = self._push_again_priority
        self._push_again = False
        self._push_again_priority = False
        summary = self.peer_summary
        if self._push_local is not None:
            summary = push_summary(summary, self._push_local, self.replica_id) or summary
        self._events.append(ev.NeedChanges(req, "push", summary, self._max_bytes(), False, 0))

    def _request_serve_chunk(self, *, first: bool) -> None:
        serve = self._serve
        assert serve is not None
        if serve.request is not None:
            return
        if len(self._inflight) + len(self._queue) >= self._send_window():
            serve.waiting = True
            return
        serve.waiting = False
        req = self._next_req
        self._next_req += 1
        self._requests[req] = ("serve", serve.sync_id)
        serve.request = req
        self._events.append(
            ev.NeedChanges(req, "serve", serve.summary, self._max_bytes(), first,
                           serve.sync_id)
        )

    def _receive_frame(self, n: int, data: bytes, info: _RecvInfo | None,
                       *, priority: bool) -> None:
        if n <= self._recv_floor or n in self._recv_done:
            self._send(Ack(n))  # our ACK was lost: repeat it
            return
        if n in self._recv_pending:
            return
        if not data:
            self._done(n, info)
            self._send(Ack(n))
            return
        if len(self._recv_pending) >= self.config.window:
            raise RemoteProtocolError("peer overran the receive window")
        self._recv_pending[n] = (info, len(data))
        self._pending_bytes += len(data)
        pull = self._pull
        if info is not None and pull is not None and info.sync_id == pull.sync_id \
                and not _in_order(pull, info.index):
            pull.held[info.index] = (n, data)  # overtook an earlier chunk: wait for it
            return
        self._events.append(
            ev.ApplyChanges(n, data, None if info is None else info.sync_id, priority)
        )

    def _is_held(self, n: int) -> bool:
        pull = self._pull
        return pull is not None and any(h[0] == n for h in pull.held.values())

    def _done(self, n: int, info: _RecvInfo | None) -> None:
        self._recv_done.add(n)
        while self._recv_floor + 1 in self._recv_done:
            self._recv_floor += 1
            self._recv_done.discard(self._recv_floor)
        pull = self._pull
        if info is None or pull is None or info.sync_id != pull.sync_id:
            return
        pull.applied.add(info.index)
        if info.last:
            pull.total = info.total
            pull.more = info.more
        for index in sorted(pull.held):
            if not _in_order(pull, index):
                break
            held_n, data = pull.held.pop(index)
            self._events.append(ev.ApplyChanges(held_n, data, pull.sync_id, False))
        if pull.total is not None and all(i in pull.applied for i in range(pull.total)):
            self._pull = None
            self._events.append(ev.SyncCompleted(pull.sync_id, pull.total, pull.more))

    def _pump(self) -> None:
        while self._queue and len(self._inflight) < self._send_window():
            item = self._queue.popleft()
            n = self._next_n
            self._next_n += 1
            frame = self._frame(item.build(n))
            self._inflight[n] = _Sent(frame, self._now)
            self._write(frame)

    def _send_window(self) -> int:
        peer_window = self.peer.window if self.peer is not None else 1
        return min(peer_window, self.config.window)

    def _max_bytes(self) -> int:
        assert self.peer is not None
        return min(self.config.chunk_bytes, self.peer.max_frame - _ENVELOPE)

    def _patience(self) -> float:
        cfg = self.config
        return cfg.rto if cfg.retransmit else cfg.rto * (cfg.max_retries + 1)

    def _frame(self, msg: Message) -> bytes:
        cap = self.peer.max_frame if self.peer is not None else self.config.max_frame
        return encode_frame(encode_message(msg), cap=cap)

    def _check_size(self, msg: Message) -> None:
        assert self.peer is not None
        if len(encode_message(msg)) > self.peer.max_frame:
            raise LocalProtocolError("message does not fit the peer's frame cap")

    def _send(self, msg: Message) -> None:
        self._write(self._frame(msg))

    def _write(self, frame: bytes) -> None:
        self._out += frame
        self.bytes_sent += len(frame)
        self._last_send = self._now

    def _require_open(self, what: str) -> None:
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"{what} needs an open session, not {self.state.value}")

    def _fail(self, reason: str, detail: str) -> None:
        if self.state is State.CLOSED:
            return
        detail = detail[:200]
        msg: Message = Reject(reason, 0, detail) if self.state is State.HANDSHAKE else Bye(reason)
        self._send(msg)
        self._closed(reason, detail, error=True)

    def _closed(self, reason: str, detail: str, *, error: bool) -> None:
        self.state = State.CLOSED
        self.close_reason = reason
        self._pull = None
        self._serve = None
        self._queue.clear()
        self._inflight.clear()
        self._recv_pending.clear()
        self._pending_bytes = 0
        self._decoder = FrameDecoder(1)  # drop any partial frame now
        self._events.append(ev.ConnectionClosed(reason, detail, error))


def _in_order(pull: _Pull, index: int) -> bool:
    """Every chunk of ``pull`` before ``index`` has been applied."""
    return all(i in pull.applied for i in range(index))


def _check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise LocalProtocolError(f"unknown reason code {reason!r}")


_H, _O = State.HANDSHAKE, State.OPEN

#: The state machine: (state, message type) -> handler.  Missing pairs are errors.
_TRANSITIONS: Final[dict[tuple[State, type], Handler]] = {
    (_H, Hello): Session._on_hello,
    (_H, Reject): Session._on_reject,
    (_H, Bye): Session._on_bye,
    (_O, Hello): Session._on_repeated_hello,
    (_O, Reject): Session._on_reject,
    (_O, Syn): Session._on_syn,
    (_O, Changes): Session._on_changes,
    (_O, Push): Session._on_push,
    (_O, Ack): Session._on_ack,
    (_O, Ping): Session._on_ping,
    (_O, Pong): Session._on_pong,
    (_O, Bye): Session._on_bye,
}

"""The sync exchange of one link: our pull, our serving of the peer's, our pushes.

A pull sends ``SYN(summary)`` and takes the ``CHANGES`` chunks that answer it, handed
to the caller in chunk order (``_delivery.InOrder``), until the last one is applied.
Serving streams chunks for the peer's summary, each computed for that summary advanced
past the chunks before it (:mod:`.summary`), at most ``max_chunks_per_sync``, while the
delivery window has room.  A push carries new local writes (priority ones jump the
queue), computed against the last summary known for the peer, and repeats until that
summary covers them.  The replica is never touched here: work is requested as events
and answered by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from . import events as ev
from ._config import ENVELOPE, Retry, SessionConfig
from ._delivery import Arrival, DataFrame, Delivery, InOrder
from ._errors import LocalProtocolError, RemoteProtocolError
from ._outbox import Outbox
from ._summary import advance_summary, asks_repair, changes_empty, push_summary
from .messages import Changes, Hello, Push, Reject, Syn, encode_message

__all__ = ["Chunk", "Exchange"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Which chunk of which pull a received ``CHANGES`` frame is."""

    sync_id: int
    index: int
    last: bool
    total: int
    more: bool


@dataclass(slots=True)
class _Pull:
    syn: Syn
    retry: Retry  # since: our SYN, or the last sign of the peer answering it
    total: int | None = None  # known once the last chunk was applied
    more: bool = False
    order: InOrder = field(default_factory=InOrder)


@dataclass(slots=True)
class _Serve:
    sync_id: int
    summary: bytes  # the peer's, advanced past the chunks computed so far
    index: int = 0
    request: int | None = None
    waiting: bool = False  # for window room
    repair: bool = False  # the peer's summary asks for digest repair


@dataclass(slots=True)
class _Push:
    request: int | None = None  # the push being computed
    again: bool = False  # another push is wanted after it
    again_priority: bool = False
    priority: bool = False  # the one being computed is a priority push
    local: bytes | None = None  # our own latest summary: push only our own writes


class Exchange:
    """Pull, serve and push bookkeeping of one open link; see the module docstring."""

    __slots__ = ("_config", "_delivery", "_max_bytes", "_next_req", "_next_sync", "_out",
                 "_peer_sync_hi", "_pull", "_push", "_replica_id", "_requests", "_serve",
                 "peer_summary")

    def __init__(self, out: Outbox, delivery: Delivery[Chunk | None], config: SessionConfig,
                 replica_id: str) -> None:
        self._out = out
        self._delivery = delivery
        self._config = config
        self._replica_id = replica_id
        self._max_bytes = 0  # set by open()
        #: Last summary known for the peer (its SYN, advanced by what we sent it).
        self.peer_summary: bytes | None = None
        self._next_sync = 1
        self._peer_sync_hi = 0
        self._pull: _Pull | None = None
        self._serve: _Serve | None = None
        self._push = _Push()
        self._next_req = 1
        self._requests: dict[int, tuple[Literal["serve", "push"], int]] = {}

    def open(self, peer: Hello) -> None:
        self._max_bytes = min(self._config.chunk_bytes, peer.max_frame - ENVELOPE)

    @property
    def pulling(self) -> bool:
        return self._pull is not None

    @property
    def serving(self) -> bool:
        return self._serve is not None

    @property
    def idle(self) -> bool:
        return self._pull is None and self._serve is None and self._push.request is None

    def close(self) -> None:
        self._pull = None
        self._serve = None

    # ------------------------------------------------------------------ our pull

    def start_sync(self, summary: bytes, now: float, *, reply: bool) -> int:
        if self._pull is not None:
            raise LocalProtocolError("a pull is already running on this link")
        syn = Syn(self._next_sync, summary, reply)
        if len(encode_message(syn)) > self._out.cap:
            raise LocalProtocolError("message does not fit the peer's frame cap")
        self._next_sync += 1
        self._pull = _Pull(syn, Retry(now))
        self._out.send(syn, now)
        return syn.sync_id

    def on_changes(self, msg: Changes, now: float) -> None:
        if msg.sync_id >= self._next_sync:
            raise RemoteProtocolError("CHANGES for a sync we never started")
        if msg.last and msg.total != msg.index + 1:
            raise RemoteProtocolError("inconsistent chunk total")
        if msg.index >= self._config.max_chunks_per_sync * 16:
            raise RemoteProtocolError("chunk index out of range")
        pull = self._pull
        if pull is not None and pull.syn.sync_id == msg.sync_id:
            pull.retry = Retry(now)
        chunk = Chunk(msg.sync_id, msg.index, msg.last, msg.total, msg.more)
        self._receive(msg.n, msg.data, chunk, False, now)

    def on_push(self, msg: Push, now: float) -> None:
        self._receive(msg.n, msg.data, None, msg.priority, now)

    def on_sync_reject(self, msg: Reject) -> None:
        if self._pull is not None and self._pull.syn.sync_id == msg.sync_id:
            self._pull = None
            self._out.emit(ev.SyncRejected(msg.sync_id, msg.reason))

    def _receive(self, n: int, data: bytes, chunk: Chunk | None, priority: bool,
                 now: float) -> None:
        arrival = self._delivery.arrive(n, len(data), chunk, now)
        if arrival is Arrival.EMPTY:
            self._chunk_applied(chunk)
        if arrival is not Arrival.NEW:
            return
        pull = self._pull
        if chunk is not None and pull is not None and chunk.sync_id == pull.syn.sync_id \
                and not pull.order.ready(chunk.index):
            pull.order.hold(chunk.index, n, data)  # overtook an earlier chunk: wait for it
            return
        self._out.emit(ev.ApplyChanges(n, data, None if chunk is None else chunk.sync_id,
                                       priority))

    def applied(self, n: int, now: float) -> None:
        pull = self._pull
        if not self._delivery.is_pending(n) or (pull is not None and pull.order.holds(n)):
            raise LocalProtocolError(f"frame {n} is not awaiting application")
        if pull is not None:
            pull.retry.since = now
        self._chunk_applied(self._delivery.applied(n, now))

    def _chunk_applied(self, chunk: Chunk | None) -> None:
        pull = self._pull
        if chunk is None or pull is None or chunk.sync_id != pull.syn.sync_id:
            return
        released = pull.order.applied(chunk.index)
        if chunk.last:
            pull.total = chunk.total
            pull.more = chunk.more
        for n, data in released:
            self._out.emit(ev.ApplyChanges(n, data, chunk.sync_id, False))
        if pull.total is not None and pull.order.complete(pull.total):
            self._pull = None
            self._out.emit(ev.SyncCompleted(chunk.sync_id, pull.total, pull.more))

    def deadline(self) -> float | None:
        return None if self._pull is None else self._pull.retry.deadline(self._config)

    def on_timeout(self, now: float) -> bool:
        """Resend our SYN when the peer has been silent about it; False when it ran out
        of retries (or cannot be resent: a stream) and the link must be given up."""
        pull, cfg = self._pull, self._config
        if pull is None or now < pull.retry.deadline(cfg):
            return True
        if not pull.retry.again(now, cfg):
            return False
        self._out.send(pull.syn, now)
        return True

    # ------------------------------------------------------------------ serving

    def on_syn(self, msg: Syn) -> None:
        if msg.sync_id <= self._peer_sync_hi:
            return  # a duplicate or a stale retransmission
        self._peer_sync_hi = msg.sync_id
        self.peer_summary = msg.summary
        if self._serve is not None:
            self._delivery.discard(self._serve.sync_id)
        self._serve = _Serve(msg.sync_id, msg.summary, repair=asks_repair(msg.summary))
        self._request_serve_chunk(first=True)
        if not msg.reply and self._pull is None:
            self._out.emit(ev.NeedSummary())

    def window_opened(self) -> None:
        """An ACK freed room: compute what was waiting for it."""
        if self._serve is not None and self._serve.waiting:
            self._request_serve_chunk(first=False)
        self._maybe_request_push()

    def _request_serve_chunk(self, *, first: bool) -> None:
        serve = self._serve
        assert serve is not None
        if serve.request is not None:
            return
        if self._delivery.backlog >= self._delivery.window:
            serve.waiting = True
            return
        serve.waiting = False
        serve.request = self._request("serve", serve.sync_id)
        self._out.emit(ev.NeedChanges(serve.request, "serve", serve.summary, self._max_bytes,
                                      first, serve.sync_id))

    def refuse(self, request: int, reason: str, now: float) -> None:
        entry = self._requests.get(request)
        if entry is None or entry[0] != "serve":
            raise LocalProtocolError(f"request {request} is not a serve request")
        del self._requests[request]
        serve = self._serve
        if serve is not None and serve.request == request:
            self._serve = None
            self._out.send(Reject(reason, entry[1], ""), now)

    def _serve_chunk(self, request: int, sync_id: int, data: bytes, now: float) -> None:
        serve = self._serve
        if serve is None or serve.sync_id != sync_id or serve.request != request:
            return  # superseded by a newer SYN of the peer
        serve.request = None
        # the first answer to a repair pull goes out even when empty: its envelope tells
        # the puller which scope we serve it, the scope its digest must be summed over
        empty = changes_empty(data)
        if empty and not (serve.repair and serve.index == 0):
            self._delivery.enqueue(DataFrame(sync_id, serve.index, b"", True, serve.index + 1))
            self._serve = None
        else:
            nxt = None if empty else advance_summary(serve.summary, data)
            if nxt is not None:
                self.peer_summary = nxt
            final = nxt is None or serve.index + 1 >= self._config.max_chunks_per_sync
            self._delivery.enqueue(DataFrame(
                sync_id, serve.index, data, final, serve.index + 1 if final else 0,
                more=final and not empty))
            serve.index += 1
            if final:
                self._serve = None
            else:
                assert nxt is not None
                serve.summary = nxt
        self._delivery.pump(now)
        if self._serve is not None:
            self._request_serve_chunk(first=False)

    # ------------------------------------------------------------------ pushing

    def request_push(self, *, priority: bool, local_summary: bytes | None) -> bool:
        if self.peer_summary is None:
            return False
        if local_summary is not None:
            self._push.local = local_summary
        self._push.again = True
        self._push.again_priority |= priority
        self._maybe_request_push()
        return True

    def _maybe_request_push(self) -> None:
        push = self._push
        # priority pushes may queue up to one extra window: they jump the queue anyway
        limit = self._delivery.window * (2 if push.again_priority else 1)
        if (not push.again or push.request is not None or self.peer_summary is None
                or self._delivery.queued >= limit):
            return
        push.request = self._request("push", 0)
        push.priority = push.again_priority
        push.again = False
        push.again_priority = False
        summary = self.peer_summary
        if push.local is not None:
            summary = push_summary(summary, push.local, self._replica_id) or summary
        self._out.emit(ev.NeedChanges(push.request, "push", summary, self._max_bytes, False, 0))

    def _push_ready(self, data: bytes, now: float) -> None:
        push = self._push
        push.request = None
        if not changes_empty(data):
            self._delivery.enqueue(DataFrame(0, data=data, priority=push.priority),
                                   first=push.priority)
            nxt = None if self.peer_summary is None else advance_summary(self.peer_summary,
                                                                         data)
            if nxt is not None:
                # keep pushing until the peer is known to hold everything we have
                self.peer_summary = nxt
                push.again = True
                push.again_priority |= push.priority
            self._delivery.pump(now)
        self._maybe_request_push()

    # ------------------------------------------------------------------ requests

    def _request(self, purpose: Literal["serve", "push"], sync_id: int) -> int:
        req = self._next_req
        self._next_req += 1
        self._requests[req] = (purpose, sync_id)
        return req

    def forget(self, request: int) -> None:
        """The link closed before ``request`` was answered."""
        self._requests.pop(request, None)

    def changes_ready(self, request: int, data: bytes, now: float) -> None:
        try:
            purpose, sync_id = self._requests[request]
        except KeyError:
            raise LocalProtocolError(f"no outstanding request {request}") from None
        if len(data) > self._out.cap - ENVELOPE:
            raise LocalProtocolError(f"changes of {len(data)} bytes do not fit a frame")
        del self._requests[request]
        if purpose == "push":
            self._push_ready(data, now)
        else:
            self._serve_chunk(request, sync_id, data, now)

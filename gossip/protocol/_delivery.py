"""The reliable-delivery window of one link: numbered data frames, both ways.

Data frames (``CHANGES`` and ``PUSH``) are numbered per direction when they are sent,
at most ``window`` unacknowledged at a time (the smaller of both ends' windows: a slow
applier slows the sender), resent after ``rto`` on a lossy transport, and
acknowledged by the receiver once applied.  The receiver hands each number to its
caller at most once (a frame applied before is only re-acknowledged: our ACK was
lost) and refuses a peer that overruns its window.  :class:`InOrder` releases one
stream's chunks in index order, each after the ones before it were applied
(Scuttlebutt's rule: an origin's deltas in version order, without gaps).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ._config import Retry, SessionConfig
from ._errors import RemoteProtocolError
from ._outbox import Outbox
from .messages import Ack, Changes, Message, Push

__all__ = ["Arrival", "DataFrame", "Delivery", "InOrder"]

T = TypeVar("T")


@dataclass(slots=True)
class DataFrame:
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
class _Sent:
    frame: bytes
    retry: Retry


class Arrival(enum.Enum):
    """What a received data frame is to the window."""

    NEW = "new"  # hand it to the caller
    EMPTY = "empty"  # nothing to apply: done and acknowledged at once
    PENDING = "pending"  # already with the caller (or held): a retransmission, ignored
    REPEAT = "repeat"  # applied before: our ACK was lost, so it was acknowledged again


class Delivery(Generic[T]):
    """Both directions of one link's numbered data frames.

    ``T`` is what the owner keeps with each received frame until it is applied (the
    exchange: which chunk of which pull it is).
    """

    __slots__ = ("_config", "_done", "_floor", "_inflight", "_next_n", "_out", "_pending",
                 "_queue", "_window", "pending_bytes")

    def __init__(self, out: Outbox, config: SessionConfig) -> None:
        self._out = out
        self._config = config
        self._window = 1  # until the peer's HELLO says its own
        # sending
        self._next_n = 1
        self._inflight: dict[int, _Sent] = {}
        self._queue: deque[DataFrame] = deque()
        # receiving
        self._floor = 0  # every number up to here is done
        self._done: set[int] = set()  # done numbers above the floor
        self._pending: dict[int, tuple[T, int]] = {}  # n -> (what the owner keeps, size)
        #: bytes of received frames not yet applied (held, or with the caller)
        self.pending_bytes = 0

    def open(self, peer_window: int) -> None:
        """The peer's HELLO is in: send at most the smaller of both windows."""
        self._window = min(peer_window, self._config.window)

    @property
    def window(self) -> int:
        return self._window

    # ------------------------------------------------------------------ sending

    @property
    def backlog(self) -> int:
        """Frames sent and unacknowledged, or queued for window room."""
        return len(self._inflight) + len(self._queue)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def enqueue(self, frame: DataFrame, *, first: bool = False) -> None:
        """Queue ``frame`` (at the head when ``first``: a priority push)."""
        if first:
            self._queue.appendleft(frame)
        else:
            self._queue.append(frame)

    def discard(self, sync_id: int) -> None:
        """Drop the queued, not yet numbered, frames of a superseded sync."""
        self._queue = deque(q for q in self._queue if q.sync_id != sync_id)

    def pump(self, now: float) -> None:
        """Number and send queued frames while the window has room."""
        while self._queue and len(self._inflight) < self._window:
            item = self._queue.popleft()
            n = self._next_n
            self._next_n += 1
            frame = self._out.frame(item.build(n))
            self._inflight[n] = _Sent(frame, Retry(now))
            self._out.write(frame, now)

    def ack(self, n: int, now: float) -> bool:
        """The peer applied frame ``n``: free its room and send more.  False for a
        duplicate ACK; an ACK of a number never sent is a protocol error."""
        if self._inflight.pop(n, None) is None:
            if n >= self._next_n:
                raise RemoteProtocolError("ACK of a frame never sent")
            return False
        self.pump(now)
        return True

    def deadline(self) -> float | None:
        if not self._inflight:
            return None
        return min(s.retry.deadline(self._config) for s in self._inflight.values())

    def retransmit(self, now: float) -> bool:
        """Resend the frames whose ACK is overdue; False when one ran out of retries
        (or cannot be resent at all: a stream), and the link must be given up."""
        cfg = self._config
        for sent in self._inflight.values():
            if now >= sent.retry.deadline(cfg):
                if not sent.retry.again(now, cfg):
                    return False
                self._out.write(sent.frame, now)
        return True

    # ------------------------------------------------------------------ receiving

    @property
    def receiving(self) -> bool:
        """Received frames are waiting to be applied."""
        return bool(self._pending)

    def arrive(self, n: int, size: int, keep: T, now: float) -> Arrival:
        """Frame ``n`` of ``size`` data bytes came in; see :class:`Arrival`."""
        if n <= self._floor or n in self._done:
            self._out.send(Ack(n), now)
            return Arrival.REPEAT
        if n in self._pending:
            return Arrival.PENDING
        if not size:
            self._finish(n, now)
            return Arrival.EMPTY
        if len(self._pending) >= self._config.window:
            raise RemoteProtocolError("peer overran the receive window")
        self._pending[n] = (keep, size)
        self.pending_bytes += size
        return Arrival.NEW

    def is_pending(self, n: int) -> bool:
        return n in self._pending

    def applied(self, n: int, now: float) -> T:
        """Frame ``n`` (pending) was applied: acknowledge it; returns what was kept."""
        keep, size = self._pending.pop(n)
        self.pending_bytes -= size
        self._finish(n, now)
        return keep

    def _finish(self, n: int, now: float) -> None:
        self._done.add(n)
        while self._floor + 1 in self._done:
            self._floor += 1
            self._done.discard(self._floor)
        self._out.send(Ack(n), now)

    @property
    def idle(self) -> bool:
        return not (self._inflight or self._queue or self._pending)

    def clear(self) -> None:
        """The link closed: drop everything queued, in flight or pending."""
        self._queue.clear()
        self._inflight.clear()
        self._pending.clear()
        self.pending_bytes = 0


@dataclass(slots=True)
class InOrder:
    """One stream's chunks, released in index order: chunk ``i`` only once chunks
    ``0..i-1`` were applied.  A chunk that overtook its predecessor waits here."""

    _applied: set[int] = field(default_factory=set)
    _through: int = 0  # chunks 0.._through-1 are all applied
    _held: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # index -> (n, data)

    def ready(self, index: int) -> bool:
        return index <= self._through

    def hold(self, index: int, n: int, data: bytes) -> None:
        self._held[index] = (n, data)

    def holds(self, n: int) -> bool:
        return any(h[0] == n for h in self._held.values())

    def applied(self, index: int) -> list[tuple[int, bytes]]:
        """Chunk ``index`` was applied; returns the held ``(n, data)`` now released."""
        self._applied.add(index)
        while self._through in self._applied:
            self._through += 1
        out = []
        for i in sorted(self._held):
            if not self.ready(i):
                break
            out.append(self._held.pop(i))
        return out

    def complete(self, total: int) -> bool:
        """Every chunk of a stream of ``total`` chunks was applied."""
        return self._through >= total

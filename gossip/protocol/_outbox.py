"""What one session has to say: frames for the peer and events for the caller.

The session's parts (handshake, delivery window, sync exchange) all write here, so the
bytes leave in the order the parts produced them and one counter and one keepalive
clock cover them all.  Frames are capped at the peer's ``max_frame`` once its HELLO is
in (ours until then).
"""

from __future__ import annotations

from collections import deque

from . import events as ev
from ._frames import encode_frame
from .messages import Message, encode_message

__all__ = ["Outbox"]


class Outbox:
    """Bytes to send and events to deliver, in order; see the module docstring."""

    __slots__ = ("_bytes", "_events", "bytes_sent", "cap", "last_send")

    def __init__(self, *, cap: int, now: float) -> None:
        self.cap = cap
        self.bytes_sent = 0
        self.last_send = now
        self._bytes = bytearray()
        self._events: deque[ev.Event] = deque()

    def frame(self, msg: Message) -> bytes:
        """``msg`` framed for the wire (a frame kept for retransmission)."""
        return encode_frame(encode_message(msg), cap=self.cap)

    def send(self, msg: Message, now: float) -> None:
        self.write(self.frame(msg), now)

    def write(self, frame: bytes, now: float) -> None:
        self._bytes += frame
        self.bytes_sent += len(frame)
        self.last_send = now

    def take(self) -> bytes:
        """Everything written so far; empties the buffer."""
        out = bytes(self._bytes)
        self._bytes.clear()
        return out

    @property
    def has_bytes(self) -> bool:
        return bool(self._bytes)

    def emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def drain(self) -> list[ev.Event]:
        out = list(self._events)
        self._events.clear()
        return out

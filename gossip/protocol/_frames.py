"""Length-prefixed framing: a 4-byte big-endian body length, then the body.

The receiver checks the announced length against its cap *as soon as the four header
bytes are in*, before it buffers a single byte of the body (memberlist's lesson: a
5-byte header must not be able to make us allocate gigabytes).  A zero-length frame is
malformed too.  The decoder therefore never holds more than ``cap + 4`` bytes plus one
``feed`` of look-ahead.
"""

from __future__ import annotations

import struct

from ._errors import LocalProtocolError, RemoteProtocolError

__all__ = ["HEADER", "FrameDecoder", "encode_frame"]

HEADER = struct.Struct(">I")


def encode_frame(body: bytes, *, cap: int) -> bytes:
    """Prefix ``body`` with its length; refuses (locally) bodies above ``cap``."""
    if not body:
        raise LocalProtocolError("empty frame body")
    if len(body) > cap:
        raise LocalProtocolError(f"frame body of {len(body)} bytes exceeds cap {cap}")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental splitter of a byte stream into frame bodies.

    ``feed(data)`` returns the bodies completed by ``data`` and keeps the remainder.  A
    caller that must change the cap between frames (the session: small until the
    handshake is done) uses ``append(data)`` and then ``next_frame()`` one body at a
    time, so each header is checked against the cap in force when it is read.
    Raises :class:`RemoteProtocolError` on an announced length of zero or above ``cap``;
    after that the decoder is poisoned and refuses further input.
    """

    __slots__ = ("_broken", "_buf", "_need", "cap")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise LocalProtocolError("frame cap must be positive")
        self.cap = cap
        self._buf = bytearray()
        self._need: int | None = None  # body length of the frame in progress
        self._broken = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self.append(data)
        out: list[bytes] = []
        while (body := self.next_frame()) is not None:
            out.append(body)
        return out

    def append(self, data: bytes) -> None:
        """Buffer ``data`` (split it with :meth:`next_frame`)."""
        if self._broken:
            raise RemoteProtocolError("input after a framing error")
        self._buf += data

    def next_frame(self) -> bytes | None:
        """The next complete body, or None until more bytes arrive."""
        if self._need is None:
            if len(self._buf) < HEADER.size:
                return None
            (length,) = HEADER.unpack_from(self._buf, 0)
            if length == 0 or length > self.cap:
                self._broken = True
                self._buf.clear()
                raise RemoteProtocolError(
                    f"frame length {length} outside 1..{self.cap}", reason="frame-size"
                )
            del self._buf[: HEADER.size]
            self._need = length
        if len(self._buf) < self._need:
            return None
        body = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        self._need = None
        return body

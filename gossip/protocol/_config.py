"""The tunables of one link, shared by the session and its three parts.

Times are seconds of the caller's clock (the session reads none).  ``retransmit``
says whether the transport may lose frames: over a stream (TCP/TLS) nothing is ever
resent and a silence longer than the whole retry budget is a dead link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._errors import LocalProtocolError

__all__ = ["ENVELOPE", "Retry", "SessionConfig"]

#: Room kept in a frame for the message envelope around a changes blob.
ENVELOPE: Final = 256


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
        if not 1 <= self.chunk_bytes <= self.max_frame - ENVELOPE:
            raise LocalProtocolError("chunk_bytes must fit in a frame")
        if self.max_chunks_per_sync < 1 or self.max_retries < 0:
            raise LocalProtocolError("max_chunks_per_sync >= 1 and max_retries >= 0")
        for name in ("rto", "handshake_timeout", "keepalive", "idle_timeout",
                     "frame_timeout"):
            if not getattr(self, name) > 0:
                raise LocalProtocolError(f"{name} must be positive")

    @property
    def patience(self) -> float:
        """How long an unanswered frame waits before it is resent (lossy transport) or
        the link is given up (a stream: the whole retry budget at once)."""
        return self.rto if self.retransmit else self.rto * (self.max_retries + 1)


@dataclass(slots=True)
class Retry:
    """The resend clock of one thing sent that awaits its answer (a data frame, our
    pull's SYN): due ``patience`` after ``since``, resent at most ``max_retries``
    times, and never over a stream."""

    since: float  # when it was sent, resent, or last answered
    count: int = 0

    def deadline(self, config: SessionConfig) -> float:
        return self.since + config.patience

    def again(self, now: float, config: SessionConfig) -> bool:
        """Count one more send at ``now``; False when none is left (or the transport
        is a stream): the link is to be given up."""
        if self.count >= config.max_retries or not config.retransmit:
            return False
        self.count += 1
        self.since = now
        return True

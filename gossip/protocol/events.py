"""Everything a :class:`~memmesh.gossip.protocol.Session` tells its caller.

The session never touches storage or the network: it reports what happened and what it
needs as these frozen events, returned by :meth:`Session.next_event`. Each class says
what the caller should do with it. The events that are *requests* (``NeedChanges``,
``ApplyChanges``) carry an id or frame number the caller quotes when it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ApplyChanges",
    "ConnectionClosed",
    "Event",
    "HandshakeComplete",
    "NeedChanges",
    "NeedSummary",
    "PeerRejected",
    "SyncCompleted",
    "SyncRejected",
]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer's HELLO was valid: same version and cluster, an acceptable identity.

    Register the peer, or refuse the link with ``session.reject("duplicate"|"busy")``."""

    peer_id: str
    peer_port: int
    version: int
    wall_ms: int = 0  # the peer's wall clock (Unix ms) when it sent its HELLO; 0: unknown


@dataclass(frozen=True, slots=True)
class NeedSummary:
    """The peer pulled from us; pull from it in turn (the reverse half of a round):
    ``session.start_sync(replica.sync_summary(), now, reply=True)``."""


@dataclass(frozen=True, slots=True)
class NeedChanges:
    """Compute ``sync_changes(summary, max_bytes=max_bytes, peer=<peer's scope>)`` and
    answer ``session.changes_ready(request, data, now)``.

    ``purpose`` is ``"serve"`` (answering the peer's SYN; ``first`` on its first chunk,
    which may instead be refused with ``session.refuse(request, "busy")``) or ``"push"``
    (new local writes, computed against the last summary we know of).
    """

    request: int
    purpose: Literal["serve", "push"]
    summary: bytes
    max_bytes: int
    first: bool
    sync_id: int


@dataclass(frozen=True, slots=True)
class ApplyChanges:
    """Apply ``data`` with ``sync_apply``, then acknowledge frame ``n`` with
    ``session.applied(n, now)`` (``session.apply_failed(n, now)`` if it was invalid).

    For our own pull (``sync_id``) the session releases chunk ``i`` only once chunks
    ``0..i-1`` were acknowledged with :meth:`Session.applied`, so applying these events
    in the order they come keeps each chunk's watermark claims gap-free."""

    n: int
    data: bytes
    sync_id: int | None
    priority: bool


@dataclass(frozen=True, slots=True)
class SyncCompleted:
    """Our pull ``sync_id`` finished and every chunk of it was applied; if ``more``,
    start another pull soon."""

    sync_id: int
    chunks: int
    more: bool


@dataclass(frozen=True, slots=True)
class SyncRejected:
    """The peer refused our pull ``sync_id`` (reason ``"busy"``); the link stays up:
    retry later."""

    sync_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PeerRejected:
    """The peer refused the whole link (wrong cluster, version, identity, busy...): give
    up this link, and maybe the address."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session reached ``CLOSED``; ``error`` is False only for a local close/BYE.
    Close the transport after flushing ``session.data_to_send()``."""

    reason: str
    detail: str
    error: bool


Event = (
    HandshakeComplete
    | NeedSummary
    | NeedChanges
    | ApplyChanges
    | SyncCompleted
    | SyncRejected
    | PeerRejected
    | ConnectionClosed
)

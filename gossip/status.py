"""Plain, immutable snapshots of a node's state for ``node.status()`` and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["NodeStatus", "PeerStatus"]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer.

    ``lag``: events of this replica that the peer's last known summary lacks (None until
    the peer sent a summary).  Times are Unix seconds (``last_sync`` None: no completed
    pull yet).  Bytes count TLS payload, i.e. protocol frames, of the current link.
    ``syncs``, ``refusals`` (states it sent that our replica skipped, by reason) and
    ``errors`` (its links closed by a fault, all reasons; ``last_error`` the latest) count
    since this node started, across reconnects.  ``clock_offset_ms``: its wall clock
    minus ours, from its HELLO (None: it did not say).  Digest repair: ``repairs`` (repair
    pulls we ran with it), ``repaired`` (keys they fetched that its watermarks had not
    shipped), ``false_claims`` (watermarks it claimed that a state later proved false).
    """

    replica_id: str
    address: tuple[str, int] | None
    direction: str
    connected_at: float
    last_sync: float | None
    lag: int | None
    bytes_in: int
    bytes_out: int
    syncs: int
    refusals: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str | None = None
    clock_offset_ms: int | None = None
    repairs: int = 0
    repaired: int = 0
    false_claims: int = 0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node as a whole.  ``write_fence``: why local writes are fenced (e.g. this
    clock runs ahead of its peers'), None when they are not.  ``refusals`` and
    ``errors`` sum every peer's; ``dropped`` counts connections this node closed to
    protect its resources, by reason.  ``repairs``, ``repaired``: digest repair pulls run
    and keys they repaired, all peers; ``lowered``: watermarks proved false and lowered."""

    replica_id: str
    host: str
    port: int
    secure: bool
    peers: tuple[PeerStatus, ...]
    bytes_in: int
    bytes_out: int
    syncs: int
    pushes: int
    rejected_busy: int
    write_fence: str | None = None
    refusals: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    repairs: int = 0
    repaired: int = 0
    lowered: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return asdict(self)

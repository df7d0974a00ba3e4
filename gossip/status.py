"""Plain, immutable snapshots of a node's state for ``node.status()`` and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["NodeStatus", "PeerStatus"]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer.

    ``lag``: events of this replica that the peer's last known summary lacks (None until
    the peer sent a summary).  Times are Unix seconds (``last_sync`` None: no completed
    pull yet).  Bytes count TLS payload, i.e. protocol frames.
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


@dataclass(frozen=True, slots=True)
class NodeStatus:
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return asdict(self)

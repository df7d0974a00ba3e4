"""memmesh.storage: the durable LMDB replica of memmesh's memory CRDTs.

``Replica.open(path)`` gives one agent's replica: memories (``add``, ``update``,
``delete``, ``forget``, ``get``, ``list``, ``history``, ``as_of``), add-wins sets
(``set_add``, ``set_remove``, ``set_members``), and the sync primitives gossip ships
(``sync_summary``, ``sync_changes``, ``sync_apply``, ``state_digest``).

Conflict bookkeeping lives here too, so the gossip node can run a resolver without
depending on :mod:`memmesh.semantic`: :class:`Conflict` in, :class:`Resolution` out,
and :func:`resolve_conflicts`, which resolves only the conflicts this replica is the
elected arbiter for (``memmesh.semantic`` re-exports these and provides the resolvers).
"""

from __future__ import annotations

from .arbitration import ResolveOutcome, resolve_conflicts
from .errors import (
    InvalidResolutionError,
    ReplicaIdMismatchError,
    StorageError,
    UnknownMemoryError,
    WritesFencedError,
)
from .reads import AsOfView
from .records import (
    ApplyResult,
    Change,
    ChangeBatch,
    Event,
    MemoryRecord,
    PeerScope,
    Refusal,
    Version,
)
from .replica import Replica
from .resolution import Conflict, ConflictVersion, Resolution, Resolver

__all__ = [
    "ApplyResult",
    "AsOfView",
    "Change",
    "ChangeBatch",
    "Conflict",
    "ConflictVersion",
    "Event",
    "InvalidResolutionError",
    "MemoryRecord",
    "PeerScope",
    "Refusal",
    "Replica",
    "ReplicaIdMismatchError",
    "Resolution",
    "ResolveOutcome",
    "Resolver",
    "StorageError",
    "UnknownMemoryError",
    "Version",
    "WritesFencedError",
    "resolve_conflicts",
]

"""memmesh.storage: the durable LMDB replica of memmesh's memory CRDTs.

``Replica.open(path)`` gives one agent's replica: memories (``add``, ``update``,
``delete``, ``forget``, ``get``, ``list``, ``history``, ``as_of``), add-wins sets
(``set_add``, ``set_remove``, ``set_members``), and the sync primitives gossip ships
(``sync_summary``, ``sync_changes``, ``sync_apply``, ``state_digest``). It lists
conflicts (``conflicts``) and writes resolutions (``resolve``); who resolves and how is
merge policy (:mod:`memmesh.merge`).
"""

from __future__ import annotations

from ._errors import (
    ReplicaIdMismatchError,
    StorageError,
    UnknownMemoryError,
    WritesFencedError,
)
from ._memory import MAX_FIELD, MAX_TEXT
from ._reads import AsOfView
from ._records import (
    ApplyResult,
    Change,
    ChangeBatch,
    Event,
    MemoryRecord,
    Refusal,
    Version,
)
from ._replica import Replica
from .wire import PeerScope

__all__ = [
    "MAX_FIELD",
    "MAX_TEXT",
    "ApplyResult",
    "AsOfView",
    "Change",
    "ChangeBatch",
    "Event",
    "MemoryRecord",
    "PeerScope",
    "Refusal",
    "Replica",
    "ReplicaIdMismatchError",
    "StorageError",
    "UnknownMemoryError",
    "Version",
    "WritesFencedError",
]

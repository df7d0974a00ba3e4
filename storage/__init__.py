"""memmesh.storage: the durable LMDB replica of memmesh's memory CRDTs.

``Replica.open(path)`` gives one agent's replica: memories (``add``, ``update``,
``delete``, ``forget``, ``get``, ``list``, ``history``, ``as_of``), add-wins sets
(``set_add``, ``set_remove``, ``set_members``), and the sync primitives gossip ships
(``sync_summary``, ``sync_changes``, ``sync_apply``, ``state_digest``). It lists
conflicts (``conflicts``) and writes resolutions (``resolve``); who resolves and how is
merge policy (:mod:`memmesh.merge`). ``view(...)`` gives a read-only :class:`ScopedView`
of the app, user, agent and run tiers one agent sees; ``list`` takes metadata
``filters`` (:data:`OPERATORS`); ``delete_all`` and ``end_run`` delete by scope.
``add_revocation`` keeps an authority's revocation (it then gossips), ``audit()``
re-checks every stored write against the trust store and can hide the lapsed ones.
``watch(...)`` follows the changes (local and merged from peers) as change events;
:class:`JournalFollower` is the journal cursor under it, for anything derived.
"""

from __future__ import annotations

from ._audit import AuditReport, Finding
from ._changes import EVENT_OPS, ChangeEvent
from ._compact import compact
from ._errors import (
    AtRestKeyError,
    NoTrustStoreError,
    ReplicaBusyError,
    ReplicaIdMismatchError,
    StorageError,
    UnknownMemoryError,
    WritesFencedError,
)
from ._filters import OPERATORS, InvalidFilterError, MetadataFilter, compile_filter
from ._follow import CommitProbe, FollowPage, JournalFollower, JournalSource
from ._keyslots import at_rest_key_file, holds_plaintext_replica
from ._memory import MAX_FIELD, MAX_TEXT
from ._reads import AsOfView
from ._records import (
    SCOPE_TIERS,
    ApplyResult,
    Change,
    ChangeBatch,
    Event,
    MemoryRecord,
    Refusal,
    Version,
)
from ._replica import Replica
from ._view import ScopedView
from ._watch import Subscription, Watch
from .wire import PeerScope

__all__ = [
    "EVENT_OPS",
    "MAX_FIELD",
    "MAX_TEXT",
    "OPERATORS",
    "SCOPE_TIERS",
    "ApplyResult",
    "AsOfView",
    "AtRestKeyError",
    "AuditReport",
    "Change",
    "ChangeBatch",
    "ChangeEvent",
    "CommitProbe",
    "Event",
    "Finding",
    "FollowPage",
    "InvalidFilterError",
    "JournalFollower",
    "JournalSource",
    "MemoryRecord",
    "MetadataFilter",
    "NoTrustStoreError",
    "PeerScope",
    "Refusal",
    "Replica",
    "ReplicaBusyError",
    "ReplicaIdMismatchError",
    "ScopedView",
    "StorageError",
    "Subscription",
    "UnknownMemoryError",
    "Version",
    "Watch",
    "WritesFencedError",
    "at_rest_key_file",
    "compact",
    "compile_filter",
    "holds_plaintext_replica",
]

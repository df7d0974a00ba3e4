"""The replica as gossip sees it: typed structural protocols instead of ``Any``.

:class:`memmesh.storage.Replica` satisfies both; tests pass small fakes.  The sync
policy never calls these methods itself: :func:`._requests.perform` is the one function
that does, so the trio shell can run it in its storage thread and the simulator and the
test driver inline.

* :class:`SyncReplica`: what syncing needs (summaries, changes, applies), the replica's
  id, its wall clock and drift bound, and its write fence (a node whose clock runs ahead
  of its peers' fences its own writes).
* :class:`NodeReplica`: plus what the trio node needs around syncing: the change
  journal it polls for local writes, the local-only store its known peers live in, and
  the counts its status shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["ApplyReport", "ChangeBatchLike", "NodeReplica", "RefusalLike", "SyncReplica"]


class RefusalLike(Protocol):
    """One key state or claim ``sync_apply`` refused (``storage.Refusal``)."""

    @property
    def reason(self) -> str: ...


class ApplyReport(Protocol):
    """What one ``sync_apply`` did (``storage.ApplyResult``): keys changed, states
    refused, watermark claims accepted (``through``) and proved false (``lowered``), the
    scope the sender says it served us, and the keys its repair listing showed we lack
    or hold otherwise (``wanted``)."""

    @property
    def changed(self) -> tuple[str, ...]: ...

    @property
    def refused(self) -> Sequence[RefusalLike]: ...

    @property
    def through(self) -> Mapping[str, int]: ...

    @property
    def lowered(self) -> Mapping[str, int]: ...

    @property
    def scope(self) -> Any: ...

    @property
    def wanted(self) -> tuple[str, ...]: ...


class SyncReplica(Protocol):
    """The sync surface of ``memmesh.storage.Replica`` (docs/internals.md section 2)."""

    @property
    def replica_id(self) -> str: ...

    @property
    def clock(self) -> Callable[[], int]: ...

    @property
    def max_drift_ms(self) -> int: ...

    @property
    def write_fence(self) -> str | None: ...

    def fence_writes(self, reason: str) -> None: ...

    def unfence_writes(self) -> None: ...

    def sync_summary(self, *, digest: bool = ..., digest_scope: Any = ...,
                     want: Sequence[str] = ...) -> bytes: ...

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = ...,
                     peer: Any = ...) -> bytes: ...

    def sync_apply(self, changes: bytes) -> ApplyReport: ...


class ChangeBatchLike(Protocol):
    """A page of the change journal (``storage.ChangeBatch``)."""

    @property
    def seq(self) -> int: ...

    @property
    def changes(self) -> Sequence[Any]: ...

    @property
    def reset(self) -> bool: ...


class NodeReplica(SyncReplica, Protocol):
    """What the trio :class:`~memmesh.gossip.Node` needs besides syncing."""

    def journal_seq(self) -> int: ...

    def changes_since(self, seq: int, limit: int = ...) -> ChangeBatchLike: ...

    def aux_get(self, namespace: str, key: bytes) -> bytes | None: ...

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None: ...

    def stats(self) -> Mapping[str, Any]:
        """Counts for the node's status (``revocations``: revocations held)."""
        ...

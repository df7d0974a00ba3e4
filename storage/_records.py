"""The read types a replica hands out: versions, memory records, events, sync results.

All are frozen value objects built from the stored key states; mutating them changes
nothing in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memmesh.crdt import CausalContext, ConflictError, Dot, Timestamp

from .wire import PeerScope

__all__ = [
    "ApplyResult",
    "Change",
    "ChangeBatch",
    "Event",
    "MemoryRecord",
    "Refusal",
    "Version",
]


@dataclass(frozen=True, slots=True)
class Version:
    """One standing value of a memory: who wrote what, when, with which dot.

    ``replica`` is the member that wrote it (a replica id); ``dot`` and ``timestamp``
    name the origin it was minted under, ``replica_id#incarnation`` (bare for dots from
    before incarnations).
    """

    text: str
    actor: str | None
    role: str | None
    replica: str
    timestamp: Timestamp
    confidence: float
    metadata: Mapping[str, Any]
    dot: Dot
    op: str  # "ADD" | "UPDATE" | "RESOLVE"
    resolver: str | None = None
    inputs: tuple[Dot, ...] = ()
    importance: float | None = None  # in [0, 1]; None when the writer gave none


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """A live memory as this replica sees it now (or at an ``as_of`` instant)."""

    id: str
    app_id: str | None
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    policy: str
    tier: str
    priority: bool
    versions: tuple[Version, ...]
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: int | None

    @property
    def conflicted(self) -> bool:
        """True while more than one concurrent version stands."""
        return len(self.versions) > 1

    @property
    def text(self) -> str:
        """The single standing text; :class:`ConflictError` naming the versions if several."""
        if len(self.versions) == 1:
            return self.versions[0].text
        names = ", ".join(
            f"{v.dot.replica}:{v.dot.counter} by {v.actor or '?'}: {v.text[:40]!r}"
            for v in self.versions
        )
        err = ConflictError(f"memory {self.id} has {len(self.versions)} concurrent versions: "
                            f"{names}")
        err.versions = self.versions  # type: ignore[attr-defined, unused-ignore]
        err.memory_id = self.id  # type: ignore[attr-defined, unused-ignore]
        raise err

    @property
    def actor(self) -> str | None:
        """The actor of the newest standing version."""
        return max(self.versions, key=lambda v: v.timestamp).actor

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The metadata of the newest standing version."""
        return max(self.versions, key=lambda v: v.timestamp).metadata

    @property
    def confidence(self) -> float:
        """The confidence of the newest standing version."""
        return max(self.versions, key=lambda v: v.timestamp).confidence

    @property
    def importance(self) -> float | None:
        """The greatest importance among the standing versions (a conflict matters as
        much as its most important side); None when no version has one."""
        return max((v.importance for v in self.versions if v.importance is not None),
                   default=None)

    @property
    def scope_tier(self) -> str | None:
        """The view tier this memory belongs to: the most specific scope field it sets
        (``"run"`` > ``"agent"`` > ``"user"`` > ``"app"``), None when it sets none (see
        ``Replica.view``). Not :attr:`tier`, which says shared or private."""
        return scope_tier(self.app_id, self.user_id, self.agent_id, self.run_id)


#: The view tiers, most specific first (the order a view lists and breaks ties in).
SCOPE_TIERS = ("run", "agent", "user", "app")


def scope_tier(app_id: str | None, user_id: str | None, agent_id: str | None,
               run_id: str | None) -> str | None:
    """The most specific of the scope fields set, as a tier name (None: none set)."""
    for name, value in zip(SCOPE_TIERS, (run_id, agent_id, user_id, app_id), strict=True):
        if value is not None:
            return name
    return None


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a memory's replicated timeline (the same on every replica).

    ``timestamp`` is the event's own hybrid time, minted by the replica that made it
    (``as_of`` goes by it); ``recorded_at`` equals it (kept for callers of the
    per-replica history it replaced). ``context`` is the key's causal context after
    the event; ``role`` the actor's role; ``importance`` the importance of the version
    the event wrote.
    """

    op: str  # ADD | UPDATE | DELETE | NOOP | RESOLVE | FORGET
    memory_id: str
    actor: str | None
    replica: str
    timestamp: Timestamp
    dot: Dot | None
    context: CausalContext
    text: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: Timestamp | None = None
    role: str | None = None
    importance: float | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """One key state (or claim) of a payload that ``sync_apply`` refused and skipped.

    ``key`` is the memory id when the state could be read far enough to know it;
    ``reason`` is a short stable code (for counters and logs), ``detail`` a sentence.
    """

    key: str | None
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one ``sync_apply`` did."""

    applied: int  # key states received and joined
    changed: tuple[str, ...]  # keys whose local state changed
    conflicts: tuple[str, ...]  # changed keys now holding several versions
    through: Mapping[str, int]  # watermark claims accepted
    refused: tuple[Refusal, ...] = ()  # states and claims skipped, each with its reason
    lowered: Mapping[str, int] = field(default_factory=dict)  # watermarks proved false
    scope: PeerScope | None = None  # the scope the sender says it served us
    wanted: tuple[str, ...] = ()  # listed keys we lack or hold otherwise: ask for them
    revocations: int = 0  # revocations new here (or earlier than the one held), kept
    retired: Mapping[str, int] = field(default_factory=dict)  # retirement entries raised


@dataclass(frozen=True, slots=True)
class Change:
    """One journal entry: key ``memory_id`` changed in transaction-order ``seq``.

    ``scope`` is the ``(app_id, user_id, agent_id, run_id)`` of a key removed whole (TTL
    collection), whose state can no longer tell it; None for every other change.
    ``sync`` is a local write's delivery mode, "push" or "pull" (given with ``sync=`` or
    remembered for the memory); None: none chosen, the node's default applies."""

    seq: int
    memory_id: str
    local: bool
    priority: bool
    scope: tuple[str | None, str | None, str | None, str | None] | None = None
    sync: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """A page of the change journal; ``reset`` when entries after ``since`` were dropped."""

    seq: int
    changes: tuple[Change, ...]
    reset: bool

"""Builders shared by the semantic tests (no storage needed), and the shared clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from manual_clock import Clock

from memmesh.crdt import Dot, Timestamp
from memmesh.merge import Conflict, ConflictVersion

__all__ = ["Clock", "conflict", "sync_all", "sync_pair", "version"]


def version(
    text: str,
    *,
    actor: str | None = "alice",
    role: str | None = None,
    wall_ms: int = 1_000,
    confidence: float = 1.0,
    replica: str = "r1",
    counter: int = 1,
) -> ConflictVersion:
    return ConflictVersion(
        text=text,
        actor=actor,
        role=role,
        timestamp=Timestamp(wall_ms, 0, replica),
        confidence=confidence,
        dot=Dot(replica, counter),
        replica=replica,
    )


def conflict(*versions: ConflictVersion, memory_id: str = "m1") -> Conflict:
    return Conflict(memory_id, tuple(sorted(versions, key=lambda v: v.dot)), {"user_id": "u1"})


def sync_pair(source: Any, target: Any) -> None:
    """Ship everything ``target`` lacks from ``source`` (in-process anti-entropy)."""
    for _ in range(100):
        result = target.sync_apply(source.sync_changes(target.sync_summary()))
        if not result.applied:
            return
    raise AssertionError("sync did not finish in 100 rounds")


def sync_all(replicas: Sequence[Any]) -> None:
    """Full-mesh sync until every replica holds the same replicated state."""
    for _ in range(10):
        for source in replicas:
            for target in replicas:
                if source is not target:
                    sync_pair(source, target)
        if len({r.state_digest() for r in replicas}) == 1:
            return
    raise AssertionError("replicas did not converge")

"""Builders shared by the semantic tests (no storage needed)."""

from __future__ import annotations

from memmesh.crdt import Dot, Timestamp
from memmesh.merge import Conflict, ConflictVersion


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

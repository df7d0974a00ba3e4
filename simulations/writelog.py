"""The ledger of acknowledged writes: the ground truth the invariants and staleness use.

A write is *acknowledged* when ``Replica.add``/``update``/``resolve`` returned (the
transaction committed). The ledger keeps, per memory, every acknowledged write with its
dot, its hybrid timestamp and the simulated time of the acknowledgement, plus who
created the memory, its scope and tier.

Staleness of a read (after Bailis et al., "Probabilistically Bounded Staleness", 2012):
the reader's newest visible version has hybrid timestamp ``t``; every acknowledged
write to that memory with a later timestamp that the reader does not hold makes the read
stale, and the staleness is how long ago the oldest such write was acknowledged
(0 when the read reflects everything acknowledged so far). Ordering by hybrid
timestamps rather than by acknowledgement time is what a last-writer-wins register
itself does, so a write that legitimately lost an LWW race never counts as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Write:
    memory_id: str
    node: str
    dot: Any  # memmesh.crdt.Dot
    timestamp: Any  # memmesh.crdt.Timestamp
    ack_us: int
    klass: str
    op: str


@dataclass(slots=True)
class MemoryInfo:
    memory_id: str
    creator: str
    app_id: str | None
    user_id: str | None
    tier: str
    policy: str
    klass: str
    writes: list[Write] = field(default_factory=list)


class WriteLog:
    def __init__(self) -> None:
        self.memories: dict[str, MemoryInfo] = {}
        self.count = 0

    def created(self, info: MemoryInfo) -> None:
        self.memories[info.memory_id] = info

    def acknowledged(self, write: Write) -> None:
        self.memories[write.memory_id].writes.append(write)
        self.count += 1

    def staleness_us(self, memory_id: str, record: Any, now_us: int) -> int:
        """How stale a read of ``memory_id`` returning ``record`` is (see module doc)."""
        info = self.memories[memory_id]
        if record is None or not record.versions:
            newest = None
            seen: set[Any] = set()
        else:
            newest = max(v.timestamp for v in record.versions)
            seen = {v.dot for v in record.versions}
        missing = [
            w.ack_us
            for w in info.writes
            if w.ack_us <= now_us
            and w.dot not in seen
            and (newest is None or w.timestamp > newest)
        ]
        return now_us - min(missing) if missing else 0

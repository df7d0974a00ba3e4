"""Shared helpers for the storage tests: full sync rounds, and the clock they use (every
read advances it 1 ms)."""

from __future__ import annotations

from manual_clock import START_MS, Clock

from memmesh.crdt import unpackb
from memmesh.storage import PeerScope, Replica

__all__ = ["START_MS", "sync_once", "sync_pair", "ticking"]


def ticking(start: int = START_MS) -> Clock:
    """The storage tests' clock: every read advances it 1 ms."""
    return Clock(start, tick_ms=1)


def sync_once(src: Replica, dst: Replica, *, max_bytes: int | None = None,
              peer: PeerScope | None = None, rounds: int = 500) -> list[bytes]:
    """Ship ``src`` -> ``dst`` until a payload carries no state; return the payloads."""
    payloads = []
    for _ in range(rounds):
        payload = src.sync_changes(dst.sync_summary(), max_bytes=max_bytes, peer=peer)
        payloads.append(payload)
        dst.sync_apply(payload)
        if not unpackb(payload)["states"]:  # type: ignore[index]
            return payloads
    raise AssertionError("sync did not finish")


def sync_pair(a: Replica, b: Replica, *, max_bytes: int | None = None) -> None:
    sync_once(a, b, max_bytes=max_bytes)
    sync_once(b, a, max_bytes=max_bytes)

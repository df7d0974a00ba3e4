"""Shared helpers for the storage tests: a deterministic clock and full sync rounds."""

from __future__ import annotations

from memmesh.crdt.codec import unpackb
from memmesh.storage import PeerScope, Replica

START_MS = 1_700_000_000_000


class FakeClock:
    """A wall clock in milliseconds that the test moves; every read advances 1 ms."""

    def __init__(self, start: int = START_MS) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


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

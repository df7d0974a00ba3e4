"""Shared helpers of the integration tests: a settable clock and replica sync."""

from __future__ import annotations

from typing import Any


class Clock:
    """A wall clock in milliseconds that tests move by hand (no sleeps)."""

    def __init__(self, start_ms: int = 1_750_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


def sync(a: Any, b: Any) -> None:
    """Anti-entropy between two replicas in both directions, without a network."""
    for src, dst in ((a, b), (b, a)):
        while True:
            changes = src.sync_changes(dst.sync_summary())
            result = dst.sync_apply(changes)
            if not result.applied:
                break

"""Helpers shared by the semantic and integration tests: the settable test clock
(:mod:`manual_clock`), and anti-entropy between replicas of one process (the storage
sync calls, no network)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from manual_clock import Clock

__all__ = ["Clock", "sync", "sync_all", "sync_pair"]


def sync_pair(source: Any, target: Any) -> None:
    """Ship everything ``target`` lacks from ``source``."""
    for _ in range(100):
        result = target.sync_apply(source.sync_changes(target.sync_summary()))
        if not result.applied:
            return
    raise AssertionError("sync did not finish in 100 rounds")


def sync(a: Any, b: Any) -> None:
    """Anti-entropy between two replicas, both ways."""
    sync_pair(a, b)
    sync_pair(b, a)


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

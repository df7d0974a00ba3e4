"""Shared helpers of the integration tests: replica sync, and the shared clock."""

from __future__ import annotations

from typing import Any

from manual_clock import Clock

__all__ = ["Clock", "sync"]


def sync(a: Any, b: Any) -> None:
    """Anti-entropy between two replicas in both directions, without a network."""
    for src, dst in ((a, b), (b, a)):
        while True:
            changes = src.sync_changes(dst.sync_summary())
            result = dst.sync_apply(changes)
            if not result.applied:
                break

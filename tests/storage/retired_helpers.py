"""Shared by the retirement-table tests: a peer's payload carrying only retirement
entries."""

from __future__ import annotations

from typing import Any

from memmesh.crdt import packb
from memmesh.storage import Replica

__all__ = ["forge"]


def forge(target: Replica, entries: dict[str, int]) -> Any:
    """Apply a payload from a peer carrying only retirement entries."""
    return target.sync_apply(packb({"v": 1, "rid": "peer", "scope": None, "states": (),
                                    "through": {}, "retired": entries}))

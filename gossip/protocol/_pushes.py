"""Which local writes ask for a push: one reading of the change journal for every node.

Each journal entry of a local write may carry its delivery mode (``sync="push"`` or
``"pull"``, chosen per write and remembered per memory by the replica; docs/internals.md,
"Change journal"). :func:`push_decision` turns a page of entries into what the node
does: push at once (as priority or not) or leave the writes to anti-entropy pulls
(Demers et al. 1987: rumor mongering for what is urgent, anti-entropy for the rest). The
trio ``Node`` and the simulator's ``SimNode`` both call it, through
``SyncPolicy.local_changes``, so they honour the same modes.

A pull-mode write never triggers a push. A push carries every write of this replica
newer than what the peer is known to hold, so a pull-mode write may ride along on a
later push: intended, a pull-mode write is never held back by being pull.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ._errors import LocalProtocolError

__all__ = ["SYNC_MODES", "PushDecision", "push_decision"]

#: The delivery modes of a local write.
SYNC_MODES: Final = ("push", "pull")


@dataclass(frozen=True, slots=True)
class PushDecision:
    """What a page of journal entries asks: ``push`` now (``priority`` first), and how
    many local writes were push-mode and pull-mode (``|`` combines pages)."""

    push: bool = False
    priority: bool = False
    pushed: int = 0
    pulled: int = 0

    def __or__(self, other: PushDecision) -> PushDecision:
        return PushDecision(self.push or other.push, self.priority or other.priority,
                            self.pushed + other.pushed, self.pulled + other.pulled)


def _fields(change: Any) -> tuple[bool, bool, object]:
    """(local, priority, mode) of a journal entry: a ``storage.Change`` (or any object
    with those fields) or a tuple ``(seq, key, local, priority[, ...])``."""
    if hasattr(change, "local"):
        return (bool(change.local), bool(getattr(change, "priority", False)),
                getattr(change, "sync", None))
    return bool(change[2]), bool(change[3]), None


def push_decision(changes: Iterable[Any], *, reset: bool = False,
                  default: str = "push") -> PushDecision:
    """The push decision for a page of journal entries.

    A local entry's mode is its own (``"push"``/``"pull"``), else push when the memory
    is priority, else ``default``. Entries merged from peers ask nothing. A ``reset``
    page (the journal was truncated past the reader) pushes: what it lost is unknown.
    """
    if default not in SYNC_MODES:
        raise LocalProtocolError(f"default must be one of {SYNC_MODES}")
    push, priority = reset, False
    pushed = pulled = 0
    for change in changes:
        local, is_priority, mode = _fields(change)
        if not local:
            continue
        if mode not in SYNC_MODES:
            mode = "push" if is_priority else default
        if mode == "pull":
            pulled += 1
            continue
        pushed += 1
        push = True
        priority = priority or is_priority
    return PushDecision(push, priority, pushed, pulled)

"""The change journal: which keys changed, in commit order, for local consumers.

Every transaction that changes a key appends ``seq(8) -> (key, local, priority)``.
The gossip node polls it to push fresh writes (priority first); the semantic index
polls it to re-embed. Because it lives in the LMDB environment, writes made by another
process on the same path appear here too.

Truncation rule: at most :data:`JOURNAL_MAX` entries are kept; older ones are dropped
as new ones arrive (by count only, never by age), and a consumer asking for entries
older than the oldest kept one gets ``reset=True`` (it should rescan). The entry of a
key removed whole (TTL collection) also carries its scope, ``(key, local, priority,
(app, user, agent, run))``, so a scoped watcher can still place it.
"""

from __future__ import annotations

from typing import Any

from memmesh.crdt import InvalidArgumentError, pack_canonical, unpackb
from memmesh.crdt.keystate import Header

from ._env import Env, Txn
from ._records import Change, ChangeBatch

__all__ = ["JOURNAL_MAX", "Journal", "append", "append_many", "changes_since", "last_seq"]

JOURNAL_MAX = 200_000
_SEQ = b"jseq"
_FIRST = b"jfirst"


def append(txn: Txn, key: str, *, local: bool, priority: bool,
           removed: Header | None = None) -> int:
    """Append one change; ``removed``: the header of a key removed whole."""
    if removed is None:
        return append_many(txn, [(key, local, priority)])
    scope = (removed.app_id, removed.user_id, removed.agent_id, removed.run_id)
    return append_many(txn, [(key, local, priority, scope)])


def append_many(txn: Txn, changes: list[tuple[Any, ...]]) -> int:
    """Append ``(key, local, priority[, scope])`` changes in order; return the last seq."""
    seq = txn.counter(_SEQ)
    if not changes:
        return seq
    rows = []
    for change in changes:
        seq += 1
        # local-only bytes of validated data: plain msgpack (no canonical walk needed)
        rows.append((seq.to_bytes(8, "big"), pack_canonical(change)))
    txn.set_counter(_SEQ, seq)
    txn.defer_rows("journal", rows)
    stored_first = txn.counter(_FIRST)
    old_first = first = stored_first or 1
    if seq - first >= JOURNAL_MAX:
        for appended in range(seq - len(changes) + 1, seq + 1):
            if appended - first >= JOURNAL_MAX:
                # drop two per append so the journal shrinks back at a constant cost
                first += 2
        for old in range(old_first, first):
            txn.delete("journal", old.to_bytes(8, "big"))
    if first != stored_first:
        txn.set_counter(_FIRST, first)
    return seq


def last_seq(txn: Txn) -> int:
    return txn.counter(_SEQ)


def changes_since(txn: Txn, since: int, limit: int) -> ChangeBatch:
    first = txn.counter(_FIRST) or 1
    reset = since + 1 < first
    start = max(since + 1, first)
    out: list[Change] = []
    cur = txn.cursor("journal")
    seq = since
    if cur.set_range(start.to_bytes(8, "big")):
        for raw_key, raw in cur:
            if len(out) >= limit:
                break
            seq = int.from_bytes(raw_key, "big")
            key, local, priority, *rest = unpackb(bytes(raw))  # type: ignore[misc, unused-ignore]
            out.append(Change(seq, key, local, priority, rest[0] if rest else None))
    if not out:
        seq = max(since, last_seq(txn)) if reset else since
    return ChangeBatch(seq, tuple(out), reset)


class Journal:
    """The journal of one replica, read by its local consumers."""

    def __init__(self, env: Env) -> None:
        self._env = env

    def seq(self) -> int:
        """The sequence number of the latest entry (0 when empty)."""
        with self._env.read() as txn:
            return last_seq(txn)

    def since(self, seq: int, limit: int = 1000) -> ChangeBatch:
        """Entries after ``seq`` (at most ``limit``); ``reset`` when truncated past it."""
        if type(seq) is not int or seq < 0 or type(limit) is not int or limit < 1:
            raise InvalidArgumentError("seq must be an int >= 0 and limit an int >= 1")
        with self._env.read() as txn:
            return changes_since(txn, seq, limit)

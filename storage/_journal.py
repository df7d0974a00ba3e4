"""The change journal: which keys changed, in commit order, for local consumers.

Every transaction that changes a key appends ``seq(8) -> (key, local, priority)``.
The gossip node polls it to push fresh writes (priority first); the semantic index
polls it to re-embed. Because it lives in the LMDB environment, writes made by another
process on the same path appear here too.

A local write may carry its delivery mode (``sync="push"|"pull"``, issue 15): the entry
is then ``(key, local, priority, scope_or_None, mode)``. A mode given explicitly is
remembered for the memory in the local-only ``aux`` store (namespace ``sync``), so a
later local write without ``sync=`` keeps it; a write with neither leaves the mode out
and the node's default applies (:func:`memmesh.gossip.protocol.push_decision`). Entries
without the field (all older ones) read as "no mode".

Truncation rule: at most :data:`JOURNAL_MAX` entries are kept; older ones are dropped
as new ones arrive (by count only, never by age), and a consumer asking for entries
older than the oldest kept one gets ``reset=True`` (it should rescan). The entry of a
key removed whole (TTL collection) also carries its scope, ``(key, local, priority,
(app, user, agent, run))``, so a scoped watcher can still place it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from memmesh.crdt import InvalidArgumentError, pack_canonical, unpackb
from memmesh.crdt.keystate import Header

from ._env import Env, Txn
from ._records import Change, ChangeBatch

__all__ = ["JOURNAL_MAX", "SYNC_MODES", "Journal", "append", "append_many", "changes_since",
           "check_sync", "last_seq"]

JOURNAL_MAX = 200_000
#: the delivery modes of a local write: pushed to peers at once, or left to pulls
SYNC_MODES = ("push", "pull")
_SEQ = b"jseq"
_FIRST = b"jfirst"


def check_sync(sync: object) -> str | None:
    """``sync`` if it is None, "push" or "pull"; else ``InvalidArgumentError``."""
    if sync is not None and (type(sync) is not str or sync not in SYNC_MODES):
        raise InvalidArgumentError('sync must be "push", "pull" or None')
    return sync


def _mode_key(key: str) -> bytes:
    """The aux row remembering ``key``'s delivery mode (fixed size: any key fits)."""
    return b"sync\x00" + hashlib.blake2b(key.encode(), digest_size=16).digest()


def _mode(txn: Txn, key: str, sync: str | None, fresh: bool = False) -> str | None:
    """The mode a local write of ``key`` records: ``sync`` (remembered), else the one
    remembered for ``key``, else None. ``fresh``: the key was absent, so nothing is
    remembered for it (the row goes when the key's state does), and nothing is read."""
    if fresh and sync is None:
        return None
    mkey = _mode_key(key)
    stored = None if fresh else txn.get("aux", mkey)
    if sync is None:
        return None if stored is None else bytes(stored).decode()
    if stored is None or bytes(stored).decode() != sync:
        txn.put("aux", mkey, sync.encode())
    return sync


def append(txn: Txn, key: str, *, local: bool, priority: bool,
           removed: Header | None = None, sync: str | None = None) -> int:
    """Append one change; ``removed``: the header of a key removed whole (its
    remembered mode goes with it); ``sync``: a local write's delivery mode."""
    if removed is None:
        return append_many(txn, [(key, local, priority)], sync=sync)
    txn.delete("aux", _mode_key(key))
    scope = (removed.app_id, removed.user_id, removed.agent_id, removed.run_id)
    return append_many(txn, [(key, local, priority, scope)])


def append_many(txn: Txn, changes: list[tuple[Any, ...]], *, sync: str | None = None,
                fresh: bool = False) -> int:
    """Append ``(key, local, priority[, scope])`` changes in order; return the last seq.

    A local change of a key with a delivery mode (``sync``, else the remembered one)
    gets it as a fifth field. ``fresh``: every key was absent before this change."""
    seq = txn.counter(_SEQ)
    if not changes:
        return seq
    rows = []
    for change in changes:
        seq += 1
        if change[1] and len(change) == 3:
            mode = _mode(txn, change[0], sync, fresh)
            if mode is not None:
                change = (*change, None, mode)
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
            mode = rest[1] if len(rest) > 1 and rest[1] in SYNC_MODES else None
            out.append(Change(seq, key, local, priority, rest[0] if rest else None, mode))
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

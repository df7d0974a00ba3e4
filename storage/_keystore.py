"""The one write path of a key: its state and everything derived from it, in step.

:func:`store` writes a key's new canonical bytes and, in the same transaction, keeps
the digest, the indexes and the journal in step with it (the history is the timeline
inside the state: ``crdt/_eventlog.py``); :func:`store_new`
does the same for keys absent here in bulk (one cursor call per sub-database), and
:func:`remove` drops a key whole (TTL collection). They run inside a replayable write
function (:mod:`._env`) and read everything they depend on from the transaction.
"""

from __future__ import annotations

from memmesh.crdt import InvalidArgumentError
from memmesh.crdt.keystate import KeyState

from . import _digest as digest
from . import _journal as journal
from ._env import Env, Txn
from ._indexes import add_many_index_rows, unstorable, update_indexes
from ._keycodec import decode, encode

__all__ = ["NewKey", "collect_expired", "load", "remove", "store", "store_new"]

#: A key absent here, ready for :func:`store_new`: (key, state key, canonical bytes,
#: state).
NewKey = tuple[str, bytes, bytes, KeyState]


def _check_storable(state: KeyState, raw: bytes) -> None:
    """Refuse a local write whose index keys would not fit LMDB (a peer's state is
    checked when its payload is read), with a typed error instead of LMDB's."""
    why = unstorable(state, len(raw))
    if why is not None:
        raise InvalidArgumentError(why)


def load(txn: Txn, key: str) -> tuple[bytes, bytes | None, KeyState | None]:
    """``(state key, stored bytes, state)`` of ``key`` (None, None when absent)."""
    skey = digest.state_key(key)
    raw = txn.get("state", skey)
    if raw is None:
        return skey, None, None
    return skey, raw, decode(raw, check_canonical=False)


def store(txn: Txn, key: str, skey: bytes, old_raw: bytes | None, old: KeyState | None,
          new: KeyState, *, local: bool, new_raw: bytes | None = None,
          sync: str | None = None) -> bool:
    """Replace ``old`` by ``new`` with every derived structure; False if unchanged.
    ``sync``: a local write's delivery mode, for its journal entry."""
    raw = encode(new) if new_raw is None else new_raw
    if old is None and not new.forgotten:
        store_new(txn, [(key, skey, raw, new)], local=local, sync=sync)
        return True
    if local:
        _check_storable(new, raw)
    if raw == old_raw:
        return False
    if new.forgotten:
        txn.shred(skey)  # encrypted at rest: the content's data key dies with this commit
    txn.put("state", skey, raw)
    digest.note_change(txn, skey,
                       old_raw if old is not None and old.header.shareable else None,
                       raw if new.header.shareable else None)
    update_indexes(txn, key, old, new)
    journal.append(txn, key, local=local, priority=new.header.priority, sync=sync)
    return True


def store_new(txn: Txn, items: list[NewKey], *, local: bool, sync: str | None = None) -> None:
    """Store keys absent here, not forgotten: the records :func:`store` writes for them,
    the index and journal rows deferred (``Txn.defer_rows``) so that a batch of
    many keys writes each sub-database with one cursor call."""
    rows: dict[str, list[tuple[bytes, bytes]]] = {
        "scope": [], "expiry": [], "conflict": [], "origin": []}
    states: list[tuple[bytes, bytes]] = []
    indexed: list[tuple[bytes, KeyState]] = []
    changes: list[tuple[str, bool, bool]] = []
    shared: list[tuple[bytes, bytes]] = []
    for key, skey, raw, state in items:
        if local:
            _check_storable(state, raw)
        states.append((skey, raw))
        indexed.append((key.encode(), state))
        if state.header.shareable:
            shared.append((skey, raw))
        changes.append((key, local, state.header.priority))
    add_many_index_rows(indexed, rows)
    txn.put_rows("state", states)  # read raw (txn.txn.stat): never deferred
    for db, db_rows in rows.items():
        txn.defer_rows(db, db_rows)
    digest.note_added(txn, shared)
    journal.append_many(txn, changes, sync=sync, fresh=True)


def remove(txn: Txn, key: str, skey: bytes, old_raw: bytes, old: KeyState) -> None:
    """Drop a key entirely (TTL collection): state (with its timeline), digest, indexes."""
    txn.delete("state", skey)
    txn.delete("proof", skey)
    digest.note_change(txn, skey, old_raw if old.header.shareable else None, None)
    update_indexes(txn, key, old, None)
    journal.append(txn, key, local=True, priority=old.header.priority, removed=old.header)


def collect_expired(env: Env, now_ms: int, limit: int) -> int:
    """Remove up to ``limit`` memories whose TTL has passed at ``now_ms``; how many.

    Every replica derives the same ``expires_at`` from the write's hybrid timestamp,
    so they all drop the same memories at the same wall time.
    """
    bound = (now_ms + 1).to_bytes(8, "big")
    with env.read() as txn:
        due = [k for k, _ in txn.prefix("expiry", b"") if k[:8] < bound][:limit]
        if not due:
            return 0

    def write(txn: Txn) -> int:
        count = 0
        for ikey in due:
            key = ikey[8:].decode()
            skey, raw, state = load(txn, key)
            if state is None or raw is None or state.header.expires_at is None \
                    or state.header.expires_at > now_ms:
                continue
            remove(txn, key, skey, raw, state)
            count += 1
        return count

    return env.write(write)

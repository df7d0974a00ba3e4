"""The on-disk layout version of a replica, and the upgrades it has needed so far.

Layout 2 changed two indexes that are pure functions of the key states (:mod:`._indexes`):
the ``origin`` index carries the key inside its index key, and the ``scope`` sub-database
gained the peer-scope rows (tag ``S``) of digest repair. Layout 3 moved each memory's
history from this replica's own ``history`` rows into the replicated timeline of its key
state (``crdt/_eventlog.py``): the rows that name a dot become events of the state
(compacted like any state), then every row is deleted. A replica written by an older
layout is upgraded when it is opened, in one transaction (so a crash leaves either
layout, never a mix), and ``meta["layout"]`` records the version. A new, empty replica
starts at the current one.
"""

from __future__ import annotations

from memmesh.crdt.keystate import KIND_MEMORY, OP_FORGET, compact, join_events

from . import _digest as digest
from ._env import Env, Txn
from ._history import legacy_events
from ._indexes import PEER_TAG, add_index_rows
from ._keycodec import decode, encode

__all__ = ["LAYOUT", "upgrade"]

LAYOUT = 3
_KEY = b"layout"


def upgrade(env: Env) -> bool:
    """Bring the replica in ``env`` to :data:`LAYOUT`; True if it had to be rebuilt."""
    with env.read() as txn:
        if txn.counter(_KEY) >= LAYOUT:
            return False
    return env.write(_rebuild)


def _rebuild(txn: Txn) -> bool:
    found = txn.counter(_KEY)
    if found >= LAYOUT:  # another process did it meanwhile
        return False
    rebuilt = False
    if found < 2:
        rebuilt = _rebuild_indexes(txn)
    rebuilt = _fold_history(txn) or rebuilt
    txn.set_counter(_KEY, LAYOUT)
    return rebuilt


def _rebuild_indexes(txn: Txn) -> bool:
    for db, prefix in (("origin", b""), ("scope", PEER_TAG)):
        for key in [k for k, _ in txn.prefix(db, prefix)]:
            txn.delete(db, key)
    rows: dict[str, list[tuple[bytes, bytes]]] = {"scope": [], "expiry": [], "conflict": [],
                                                  "origin": []}
    rebuilt = False
    for skey, raw in txn.prefix("state", b""):
        state = decode(raw, check_canonical=False)
        add_index_rows(skey[1:].decode(), state, rows)
        rebuilt = True
    txn.put_rows("origin", sorted(rows["origin"]))
    txn.put_rows("scope", sorted(r for r in rows["scope"] if r[0].startswith(PEER_TAG)))
    return rebuilt


def _fold_history(txn: Txn) -> bool:
    """Layout 3: each memory's history rows become events of its timeline (a forgotten
    memory keeps its FORGET events only), the digest follows the new bytes, and the
    rows are deleted. The context and the indexes do not change."""
    keys = sorted({k[:k.index(b"\x00")] for k, _ in txn.prefix("history", b"")})
    changed = False
    for key_bytes in keys:
        key = key_bytes.decode()
        skey = digest.state_key(key)
        raw = txn.get("state", skey)
        if raw is None:
            continue
        state = decode(raw, check_canonical=False)
        if state.header.kind != KIND_MEMORY:
            continue
        found = {d: e for d, e in legacy_events(txn, key).items()
                 if d.counter <= state.ctx.get(d.replica, 0)
                 and (e.op == OP_FORGET) == state.forgotten}
        if not found:
            continue
        state.events = compact(join_events(state.events, found), state.keep,
                               state.protected())
        new_raw = encode(state)
        if new_raw == raw:
            continue
        txn.put("state", skey, new_raw)
        digest.note_change(txn, skey, raw if state.header.shareable else None,
                           new_raw if state.header.shareable else None)
        changed = True
    for k in [k for k, _ in txn.prefix("history", b"")]:
        txn.delete("history", k)
    return changed

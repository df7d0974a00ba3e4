"""Secondary indexes kept in step with the key states, in the same transaction.

Each index entry is a pure function of one key state, so an index is maintained by
diffing the entries of the old and the new state of the key that changed:

* ``scope``: ``field + value + 0x00 + key`` for every scope field set on a memory that
  is not forgotten; ``list(**filters)`` walks one prefix instead of every key;
* ``expiry``: ``expires_ms(8) + key`` for memories with a TTL (the collector's queue);
* ``conflict``: ``key`` for live memories with several standing versions;
* ``origin`` (the delta log): ``prio + origin + 0x00 + counter(8) -> key`` for every
  origin of a shareable key's context, at that key's *latest* counter of the origin.
  Truncation rule: when a key gets a newer event of an origin, its older entry of that
  origin is deleted (the key's state carries the older event anyway), so the log holds
  at most one entry per (key, origin) and never more entries than keys x origins.
  Priority keys sort first (prefix 0x00, others 0x01), so sync ships them first.
"""

from __future__ import annotations

from .env import Txn
from .keystate import KIND_MEMORY, KeyState

__all__ = ["SCOPE_FIELDS", "add_index_rows", "origin_key", "parse_origin_key", "scope_prefix",
           "update_indexes"]

#: Scope field name -> its one-byte tag in the ``scope`` index.
SCOPE_FIELDS: dict[str, bytes] = {"app_id": b"a", "user_id": b"u", "agent_id": b"g",
                                  "run_id": b"r"}


#: The tags of (app_id, user_id, agent_id, run_id), in that order, for the hot path.
_SCOPE_TAGS = tuple(SCOPE_FIELDS[name] for name in ("app_id", "user_id", "agent_id", "run_id"))


def scope_prefix(field: str, value: str) -> bytes:
    return SCOPE_FIELDS[field] + value.encode() + b"\x00"


def origin_key(priority: bool, origin: str, counter: int) -> bytes:
    return (b"\x00" if priority else b"\x01") + origin.encode() + b"\x00" + \
        counter.to_bytes(8, "big")


def parse_origin_key(raw: bytes) -> tuple[bool, str, int]:
    return raw[0] == 0, raw[1:-9].decode(), int.from_bytes(raw[-8:], "big")


def _entries(key: str, state: KeyState | None) -> list[tuple[str, bytes, bytes]]:
    """Every index entry of ``key`` in ``state``, as ``(sub-database, key, value)``."""
    if state is None:
        return []
    rows: dict[str, list[tuple[bytes, bytes]]] = {"scope": [], "expiry": [], "conflict": [],
                                                  "origin": []}
    add_index_rows(key, state, rows)
    return [(db, ikey, value) for db, entries in rows.items() for ikey, value in entries]


def add_index_rows(key: str, state: KeyState, rows: dict[str, list[tuple[bytes, bytes]]]
                   ) -> None:
    """Append every index entry of ``key`` in ``state`` to ``rows[sub-database]`` (the one
    definition of the entries, for both the diffing and the bulk path)."""
    h = state.header
    kb = key.encode()
    if h.kind == KIND_MEMORY and not state.forgotten:
        scope = rows["scope"]
        for tag, value in zip(_SCOPE_TAGS, (h.app_id, h.user_id, h.agent_id, h.run_id),
                              strict=True):
            if value is not None:
                scope.append((tag + value.encode() + b"\x00" + kb, b""))
        if h.expires_at is not None:
            rows["expiry"].append((h.expires_at.to_bytes(8, "big") + kb, b""))
        if len(state.body) > 1 and len(state.standing()) > 1:
            rows["conflict"].append((kb, b""))
    if h.shareable:
        origin = rows["origin"]
        for replica, counter in state.ctx.items():
            origin.append((origin_key(h.priority, replica, counter), kb))


def update_indexes(txn: Txn, key: str, old: KeyState | None, new: KeyState | None) -> None:
    """Bring every index from ``old`` (None: key absent) to ``new`` (None: removed)."""
    after = {(db, ikey): value for db, ikey, value in _entries(key, new)}
    before = {(db, ikey): value for db, ikey, value in _entries(key, old)}
    for db, ikey in before.keys() - after.keys():
        txn.delete(db, ikey)
    for (db, ikey), value in after.items():
        if (db, ikey) not in before:
            txn.put(db, ikey, value)

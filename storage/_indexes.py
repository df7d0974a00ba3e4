"""Secondary indexes, kept in step with the key states in the same transaction.

Each entry is a pure function of one key state, so an index is maintained by diffing
the entries of a key's old and new state (layouts: docs/internals.md, section 2):
``scope`` (the ``list()`` rows and the peer-scope rows of digest repair), ``expiry``
(the TTL collector's queue), ``conflict`` (live memories with several standing
versions) and ``origin``, the delta log (priority + origin + counter + key per origin of
a shareable key's context; priority keys sort, and sync, first). :func:`unstorable`
says from the same layouts whether a state would need an index key beyond LMDB's 511
bytes, so such a state is refused before any write.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import cast

from memmesh.crdt.keystate import KIND_MEMORY, KeyState

from ._env import Txn

__all__ = ["MAX_INDEX_KEY", "SCOPE_FIELDS", "add_index_rows", "add_many_index_rows",
           "holds_origin", "origin_entries", "origin_key", "origins", "peer_keys", "scope_hash",
           "scope_prefix", "unstorable", "update_indexes"]

#: LMDB's key size limit (``Environment.max_key_size()`` of a default build).
MAX_INDEX_KEY = 511

#: Scope field name -> its one-byte tag in the ``scope`` index.
SCOPE_FIELDS: dict[str, bytes] = {"app_id": b"a", "user_id": b"u", "agent_id": b"g",
                                  "run_id": b"r"}


#: The tags of (app_id, user_id, agent_id, run_id), in that order, for the hot path.
_SCOPE_TAGS = tuple(SCOPE_FIELDS[name] for name in ("app_id", "user_id", "agent_id", "run_id"))
_PRIO = (b"\x01", b"\x00")  # by header.priority: priority keys sort first


def scope_prefix(field: str, value: str) -> bytes:
    return SCOPE_FIELDS[field] + value.encode() + b"\x00"


PEER_TAG = b"S"
_H = 16  # bytes of h(value) in the peer-scope index


@functools.lru_cache(maxsize=4096)
def scope_hash(value: str | None) -> bytes:
    """``h(value)`` of the peer-scope index (see module doc)."""
    data = b"\x00" if value is None else b"\x01" + value.encode()
    return hashlib.blake2b(data, digest_size=_H).digest()


@functools.lru_cache(maxsize=4096)
def _peer_prefix(app_id: str | None, user_id: str | None) -> bytes:
    return PEER_TAG + scope_hash(app_id) + scope_hash(user_id)


def peer_keys(txn: Txn, apps: frozenset[str | None] | None,
              users: frozenset[str | None] | None) -> Iterator[bytes]:
    """The keys (UTF-8) of the shareable keys whose app_id is in ``apps`` and user_id in
    ``users`` (None: any), through the peer-scope index; both None walks every row."""
    if apps is not None:
        for app in sorted(apps, key=lambda v: (v is not None, v or "")):
            head = PEER_TAG + scope_hash(app)
            if users is None:
                yield from _keys_under(txn, head, len(head) + _H)
            else:
                for user in users:
                    yield from _keys_under(txn, head + scope_hash(user), len(head) + _H)
        return
    if users is None:
        yield from _keys_under(txn, PEER_TAG, 1 + 2 * _H)
        return
    cur = txn.cursor("scope")
    seek = PEER_TAG
    while cur.set_range(seek):  # skip-scan over the distinct apps
        raw = bytes(cur.key())
        if raw[:1] != PEER_TAG:
            return
        app_hash = raw[1:1 + _H]
        for user in users:
            yield from _keys_under(txn, PEER_TAG + app_hash + scope_hash(user), 1 + 2 * _H)
        following = int.from_bytes(app_hash, "big") + 1
        if following >> (8 * _H):
            return
        seek = PEER_TAG + following.to_bytes(_H, "big")


def _keys_under(txn: Txn, prefix: bytes, cut: int) -> Iterator[bytes]:
    for ikey, _ in txn.prefix("scope", prefix):
        yield ikey[cut:]


def origin_key(priority: bool, origin: str, counter: int, key: bytes) -> bytes:
    return _PRIO[priority] + origin.encode() + b"\x00" + counter.to_bytes(8, "big") + key


def origins(txn: Txn, priority: bool) -> Iterator[str]:
    """The origins present in the ``origin`` index under ``priority`` (skip-scan)."""
    cur = txn.cursor("origin")
    prio = _PRIO[priority]
    seek = prio
    while cur.set_range(seek):
        raw = bytes(cur.key())
        if raw[:1] != prio:
            return
        end = raw.index(b"\x00", 1)  # origins never contain NUL
        origin = raw[1:end]
        yield origin.decode()
        seek = prio + origin + b"\x01"


def origin_entries(txn: Txn, priority: bool, origin: str, start: int
                   ) -> Iterator[tuple[int, bytes]]:
    """``(counter, key)`` of the entries of ``origin`` from counter ``start`` on, in
    counter order (then key order)."""
    prefix = _PRIO[priority] + origin.encode() + b"\x00"
    cut = len(prefix) + 8
    cur = txn.cursor("origin")
    if not cur.set_range(prefix + start.to_bytes(8, "big")):
        return
    keys = cast(Iterator[bytes], cur.iternext(values=False))  # buffers=False: bytes
    for raw in keys:
        if not raw.startswith(prefix):
            return
        yield int.from_bytes(raw[len(prefix):cut], "big"), bytes(raw[cut:])


def latest_counter(txn: Txn, origin: str, below: int | None = None) -> int:
    """The counter of the latest event of ``origin`` some shareable key here carries
    (its highest ``origin`` index entry), or of the latest one before counter ``below``;
    0 when none."""
    cur = txn.cursor("origin")
    best = 0
    for prio in _PRIO:
        prefix = prio + origin.encode() + b"\x00"
        # just past the entries wanted (a counter's first byte is at most 0x7f)
        seek = prefix + (b"\xff" if below is None else below.to_bytes(8, "big"))
        found = cur.prev() if cur.set_range(seek) else cur.last()
        raw = bytes(cur.key()) if found else b""
        if raw.startswith(prefix):
            best = max(best, int.from_bytes(raw[len(prefix):len(prefix) + 8], "big"))
    return best


def holds_origin(txn: Txn, origin: str) -> bool:
    """Whether some shareable key here carries an event of ``origin``."""
    cur = txn.cursor("origin")
    tail = origin.encode() + b"\x00"
    return any(cur.set_range(prio + tail) and bytes(cur.key()).startswith(prio + tail)
               for prio in _PRIO)


def _blen(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def unstorable(state: KeyState, size: int | None = None) -> str | None:
    """Why ``state`` cannot be stored (an index key would exceed LMDB's key size), or
    None. Mirrors the layouts above and those of ``state`` (bucket + key), ``history``
    (key + 0x00 + seq(8)) and ``expiry``; cheap (a few string lengths). ``size``, the
    length of the state's canonical bytes when known, settles most states at once: every
    index key is at most ``1 + 2 * 16`` bytes beyond two strings of those bytes."""
    if size is not None and size + 1 + 2 * _H <= MAX_INDEX_KEY:
        return None
    h = state.header
    memory = h.kind == KIND_MEMORY and not state.forgotten
    values = [v for v in (h.app_id, h.user_id, h.agent_id, h.run_id) if v is not None] \
        if memory else []
    origins = list(state.ctx) if h.tier == "shared" else []
    widest = max(map(len, values + origins), default=0)
    if 4 * (len(h.key) + widest) + 1 + 2 * _H <= MAX_INDEX_KEY:
        return None  # fits even if every character took 4 UTF-8 bytes
    k = _blen(h.key)
    longest = k + 9  # history (state: k + 1, expiry: k + 8)
    if h.tier == "shared":
        longest = k + 1 + 2 * _H  # the peer-scope row
    for value in values:
        longest = max(longest, k + 2 + _blen(value))
    for origin in origins:
        longest = max(longest, k + 10 + _blen(origin))
    if longest > MAX_INDEX_KEY:
        return (f"key {h.key[:40]!r}...: an index key of {longest} bytes would exceed"
                f" LMDB's {MAX_INDEX_KEY}-byte limit")
    return None


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
    """Append every index entry of ``key`` in ``state`` to ``rows[sub-database]``."""
    add_many_index_rows([(key.encode(), state)], rows)


def add_many_index_rows(items: list[tuple[bytes, KeyState]],
                        rows: dict[str, list[tuple[bytes, bytes]]]) -> None:
    """Append every index entry of each ``(UTF-8 key, state)`` of ``items`` to
    ``rows[sub-database]`` (the one definition of the entries, for the diffing and the
    bulk path, which passes thousands of keys in one call)."""
    scope, origin = rows["scope"], rows["origin"]
    for kb, state in items:
        h = state.header
        if h.kind == KIND_MEMORY and not state.forgotten:
            for tag, value in zip(_SCOPE_TAGS, (h.app_id, h.user_id, h.agent_id, h.run_id),
                                  strict=True):
                if value is not None:
                    scope.append((tag + value.encode() + b"\x00" + kb, b""))
            if h.expires_at is not None:
                rows["expiry"].append((h.expires_at.to_bytes(8, "big") + kb, b""))
            if len(state.body) > 1 and len(state.standing()) > 1:
                rows["conflict"].append((kb, b""))
        if h.shareable:
            scope.append((_peer_prefix(h.app_id, h.user_id) + kb, b""))
            for replica, counter in state.ctx.items():
                origin.append((origin_key(h.priority, replica, counter, kb), b""))


def update_indexes(txn: Txn, key: str, old: KeyState | None, new: KeyState | None) -> None:
    """Bring every index from ``old`` (None: key absent) to ``new`` (None: removed)."""
    after = {(db, ikey): value for db, ikey, value in _entries(key, new)}
    before = {(db, ikey): value for db, ikey, value in _entries(key, old)}
    for db, ikey in before.keys() - after.keys():
        txn.delete(db, ikey)
    for (db, ikey), value in after.items():
        if (db, ikey) not in before:
            txn.put(db, ikey, value)

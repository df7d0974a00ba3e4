"""The replicated-state digest: an incremental multiset hash over shareable keys.

``state_digest`` must be equal on two replicas exactly when their shareable states are
equal, and cheap to keep current. It is MSet-Add-Hash (Clarke, Devadas, van Dijk,
Gassend, Suh, "Incremental Multiset Hash Functions", ASIACRYPT 2003): the sum modulo
2**256 of ``sha256(key, state bytes)`` over the shareable keys, so a write subtracts the
old item and adds the new one in O(1), in any order. The sum is kept per bucket (256, by
``crc32(key) & 0xFF``, the prefix of the key in ``state``) and the root is their sum:
replicas whose roots differ compare bucket sums and ship only the differing buckets'
keys (Riak's active anti-entropy, Akka ddata's digest ranges).
"""

from __future__ import annotations

import hashlib
import zlib

from ._env import Txn
from .wire import DIGEST_BUCKETS

__all__ = ["BUCKETS", "bucket_of", "bucket_sums", "note_added", "note_change", "root",
           "state_key", "state_root"]

BUCKETS = DIGEST_BUCKETS
_MOD = 1 << 256
_META = b"dg:"
_ZERO = bytes(32)
_sha256 = hashlib.sha256


def bucket_of(key: bytes) -> int:
    return zlib.crc32(key) & 0xFF


def state_key(key: str) -> bytes:
    """The ``state`` sub-database key of ``key``: its bucket byte, then its UTF-8 bytes."""
    raw = key.encode()
    return bytes((bucket_of(raw),)) + raw


def item_hash(skey: bytes, data: bytes) -> int:
    """``sha256(len(skey) as 2 bytes, skey, data)`` as an integer (one hashing call: the
    copy costs less than two more method calls)."""
    return int.from_bytes(_sha256(len(skey).to_bytes(2, "big") + skey + data).digest(), "big")


def note_change(txn: Txn, skey: bytes, old: bytes | None, new: bytes | None) -> None:
    """Record that shareable key ``skey`` went from ``old`` to ``new`` bytes (None: absent).

    The per-bucket deltas collect in the transaction's scratch and are folded into the
    stored sums once, just before commit.
    """
    delta = 0
    if old is not None:
        delta -= item_hash(skey, old)
    if new is not None:
        delta += item_hash(skey, new)
    if delta:
        pending = _pending(txn)
        pending[skey[0]] = pending.get(skey[0], 0) + delta


def note_added(txn: Txn, items: list[tuple[bytes, bytes]]) -> None:
    """:func:`note_change` from absent to ``data`` for every ``(skey, data)`` of ``items``."""
    if items:
        pending = _pending(txn)
        get = pending.get
        for skey, data in items:
            pending[skey[0]] = get(skey[0], 0) + item_hash(skey, data)


def _pending(txn: Txn) -> dict[int, int]:
    """The transaction's bucket deltas, folded into the stored sums just before commit."""
    pending: dict[int, int] | None = txn.scratch.get("digest")
    if pending is None:
        pending = txn.scratch["digest"] = {}
        txn.pre_commit.append(_flush)
    return pending


def _sum(txn: Txn, bucket: int, delta: int) -> bytes:
    """The stored sum of ``bucket`` plus ``delta``, as 32 bytes."""
    raw = txn.get("meta", _META + bytes((bucket,)))
    return (((int.from_bytes(raw, "big") if raw else 0) + delta) % _MOD).to_bytes(32, "big")


def _flush(txn: Txn) -> None:
    pending: dict[int, int] = txn.scratch.pop("digest", {})
    for bucket, delta in pending.items():
        txn.put("meta", _META + bytes((bucket,)), _sum(txn, bucket, delta))


def _nonzero_sums(txn: Txn) -> dict[int, int]:
    """The bucket sums that are not zero, as committed, pending deltas included: one
    cursor walk over the stored sums (only buckets ever written have one), not a lookup
    per bucket, since every summary and digest reads them."""
    sums: dict[int, int] = {}
    width = len(_META) + 1
    for key, raw in txn.prefix("meta", _META):
        if len(key) == width:
            sums[key[-1]] = int.from_bytes(raw, "big")
    for bucket, delta in txn.scratch.get("digest", {}).items():
        sums[bucket] = (sums.get(bucket, 0) + delta) % _MOD
    return {bucket: total for bucket, total in sums.items() if total}


def bucket_sums(txn: Txn) -> list[bytes]:
    """The 256 bucket sums (32 bytes each) as committed, pending deltas included."""
    sums = [_ZERO] * BUCKETS
    for bucket, total in _nonzero_sums(txn).items():
        sums[bucket] = total.to_bytes(32, "big")
    return sums


def state_root(txn: Txn) -> bytes:
    """``root(bucket_sums(txn))``, without building the 256 sums."""
    return (sum(_nonzero_sums(txn).values()) % _MOD).to_bytes(32, "big")


def root(sums: list[bytes]) -> bytes:
    total = sum(int.from_bytes(s, "big") for s in sums) % _MOD
    return total.to_bytes(32, "big")

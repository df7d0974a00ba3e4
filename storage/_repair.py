"""Digest repair: find and ship the keys two replicas disagree on, whatever the
watermarks say (the bucketed anti-entropy of Riak's AAE and Akka ddata's digests, one
level deep; Dynamo and Cassandra use Merkle trees).

Watermarks cannot see what a false claim, a filtered sync or a restored backup hid;
digests can. A summary with ``digest`` carries 256 bucket sums over the scope the peer
serves; the answer lists ``(key, hash8)`` for the keys of the buckets that differ
(:func:`bucket_listing`); the keys the receiver lacks or holds otherwise
(:func:`wanted`) go in its next summary's ``want`` and are shipped whatever the
watermarks say. A key whose state here dominates is wanted too (a hash cannot say which
side holds more); the peer's own repair fixes the other side.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _digest as digest
from ._env import Txn
from ._indexes import peer_keys
from ._keycodec import decode
from .wire import DIGEST_BUCKET_BYTES, DIGEST_BUCKETS, MAX_WANT, PeerScope, bounded_want, normal

__all__ = ["bucket_listing", "differing", "hash8", "scope_sums", "wanted"]

_MASK = (1 << 64) - 1


def hash8(skey: bytes, raw: bytes) -> bytes:
    """The 8-byte hash of one key's state listed by repair: the low 64 bits of its term
    in the digest (so a bucket's 8-byte sum is the sum of its keys' hashes)."""
    return (digest.item_hash(skey, raw) & _MASK).to_bytes(DIGEST_BUCKET_BYTES, "big")


def scope_sums(txn: Txn, scope: PeerScope | None) -> bytes:
    """The 256 bucket sums (8 bytes each, concatenated) over the shareable keys inside
    ``scope`` (None: all of them, from the sums the digest keeps; a restricted scope
    walks the peer-scope index for each of its patterns, reading the header of a key
    only where a pattern restricts agents or runs: cost proportional to what it holds)."""
    scope = normal(scope)
    if scope is None:
        return b"".join(s[-DIGEST_BUCKET_BYTES:] for s in digest.bucket_sums(txn))
    sums = [0] * DIGEST_BUCKETS
    counted: set[bytes] = set()
    for pattern in scope.patterns():  # a union: each key counted once
        by_header = pattern.agents is not None or pattern.runs is not None
        for kb in peer_keys(txn, pattern.apps, pattern.users):
            if kb in counted:
                continue
            skey = bytes((digest.bucket_of(kb),)) + kb
            raw = txn.get("state", skey)
            if raw is None:
                continue
            if by_header:  # the index knows apps and users; agents and runs: the header
                h = decode(raw, check_canonical=False).header
                if not pattern.covers(h.app_id, h.user_id, h.agent_id, h.run_id):
                    continue
            counted.add(kb)
            sums[skey[0]] = (sums[skey[0]] + digest.item_hash(skey, raw)) & _MASK
    return b"".join(s.to_bytes(DIGEST_BUCKET_BYTES, "big") for s in sums)


def differing(mine: bytes, theirs: bytes) -> list[int]:
    """The buckets whose sums differ, ascending."""
    n = DIGEST_BUCKET_BYTES
    return [b for b in range(DIGEST_BUCKETS)
            if mine[b * n:(b + 1) * n] != theirs[b * n:(b + 1) * n]]


def bucket_listing(txn: Txn, bucket: int, scope: PeerScope | None) -> list[tuple[str, bytes]]:
    """``(key, hash8)`` of every shareable key of ``bucket`` that ``scope`` allows."""
    scope = normal(scope)
    out = []
    for skey, raw in txn.prefix("state", bytes((bucket,))):
        h = decode(raw, check_canonical=False).header
        if h.shareable and (scope is None or scope.allows(h.app_id, h.user_id,
                                                             h.agent_id, h.run_id)):
            out.append((h.key, hash8(skey, raw)))
    return out


def wanted(txn: Txn, hashes: Iterable[tuple[str, bytes]]) -> tuple[str, ...]:
    """The listed keys this replica lacks or holds with another hash (bounded like
    ``want``, so the result can be passed to ``sync_summary(want=...)`` as it is)."""
    out: list[str] = []
    for key, their_hash in hashes:
        skey = digest.state_key(key)
        raw = txn.get("state", skey)
        if raw is None or hash8(skey, raw) != their_hash:
            out.append(key)
            if len(out) > MAX_WANT:
                break
    return bounded_want(out)

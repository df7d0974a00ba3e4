"""Digest repair: find and ship the keys two replicas disagree on, whatever the
watermarks say (issue 11, deliverable 6; the bucketed anti-entropy of Riak's AAE and
Akka ddata's digests, one level deep: Dynamo and Cassandra use Merkle trees).

Watermarks cannot see what a false claim, a filtered sync or a restored backup hid.
Digests can: the replicated state's MSet-Add-Hash (:mod:`.digest`) is kept per bucket
of keys, so two replicas compare 256 bucket sums, then list ``(key, hash)`` for the
keys of the buckets that differ, and the side that lacks a key (or holds another state
of it) asks for it by id. One round trip per step, cost proportional to the differing
buckets, not to the replica:

1. A's summary carries ``digest``: the scope it was computed over (the PeerScope B
   applies to A, so both sides sum the same keys) and 256 sums of 8 bytes (the low 64
   bits of the stored 256-bit sums: a sum mod 2**64 is the sum of the hashes mod 2**64).
2. B's ``sync_changes`` compares them with its own sums over that scope and adds
   ``hashes``: ``(key, 8-byte hash of its state)`` for every key A may see in each
   differing bucket (whole buckets, as many as fit ``max_bytes``).
3. A's ``sync_apply`` returns ``wanted``: the listed keys it lacks or holds with another
   hash; A's next summary carries them as ``want`` and B ships those states.

A key whose state here already dominates the peer's is wanted too (a hash cannot say
which side holds more); its join changes nothing here and the peer's own repair pull
fixes the other side. Bounds: ``want`` holds at most :data:`MAX_WANT` ids and
:data:`MAX_WANT_BYTES` of them (beside a summary's capped watermarks it still fits a
4 MiB frame); a digest scope names at most :data:`MAX_SCOPE_VALUES` apps and users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memmesh.crdt import InvalidArgumentError

from . import digest
from .env import Txn
from .indexes import peer_keys
from .keycodec import MAX_KEY_LEN, decode
from .records import PeerScope

__all__ = ["DIGEST_BUCKET_BYTES", "MAX_HASHES", "MAX_SCOPE_VALUES", "MAX_WANT",
           "MAX_WANT_BYTES",
           "bounded_want", "bucket_listing", "check_want", "differing", "hash8", "normal",
           "scope_sums", "wanted"]

DIGEST_BUCKET_BYTES = 8
MAX_WANT = 4096
MAX_WANT_BYTES = 512 * 1024
MAX_SCOPE_VALUES = 256
#: Most ``(key, hash)`` pairs one payload may list (a 4 MiB frame holds about 90k).
MAX_HASHES = 131_072
_MASK = (1 << 64) - 1


def normal(scope: PeerScope | None) -> PeerScope | None:
    """``scope`` with an unrestricted PeerScope as None (they allow the same keys)."""
    if scope is not None and scope.apps is None and scope.users is None:
        return None
    return scope


def hash8(skey: bytes, raw: bytes) -> bytes:
    """The 8-byte hash of one key's state listed by repair: the low 64 bits of its term
    in the digest (so a bucket's 8-byte sum is the sum of its keys' hashes)."""
    return (digest.item_hash(skey, raw) & _MASK).to_bytes(DIGEST_BUCKET_BYTES, "big")


def scope_sums(txn: Txn, scope: PeerScope | None) -> bytes:
    """The 256 bucket sums (8 bytes each, concatenated) over the shareable keys inside
    ``scope`` (None: all of them, from the sums the digest keeps; a restricted scope
    walks the peer-scope index: cost proportional to what it holds)."""
    scope = normal(scope)
    if scope is None:
        return b"".join(s[-DIGEST_BUCKET_BYTES:] for s in digest.bucket_sums(txn))
    sums = [0] * digest.BUCKETS
    for kb in peer_keys(txn, scope.apps, scope.users):
        skey = bytes((digest.bucket_of(kb),)) + kb
        raw = txn.get("state", skey)
        if raw is not None:
            sums[skey[0]] = (sums[skey[0]] + digest.item_hash(skey, raw)) & _MASK
    return b"".join(s.to_bytes(DIGEST_BUCKET_BYTES, "big") for s in sums)


def differing(mine: bytes, theirs: bytes) -> list[int]:
    """The buckets whose sums differ, ascending."""
    n = DIGEST_BUCKET_BYTES
    return [b for b in range(digest.BUCKETS)
            if mine[b * n:(b + 1) * n] != theirs[b * n:(b + 1) * n]]


def bucket_listing(txn: Txn, bucket: int, scope: PeerScope | None) -> list[tuple[str, bytes]]:
    """``(key, hash8)`` of every shareable key of ``bucket`` that ``scope`` allows."""
    scope = normal(scope)
    out = []
    for skey, raw in txn.prefix("state", bytes((bucket,))):
        h = decode(raw, check_canonical=False).header
        if h.shareable and (scope is None or scope.allows(h.app_id, h.user_id)):
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


def bounded_want(keys: Sequence[str]) -> tuple[str, ...]:
    """The first keys of ``keys`` within :data:`MAX_WANT` and :data:`MAX_WANT_BYTES`."""
    out: list[str] = []
    size = 0
    for key in keys:
        size += len(key.encode())
        if len(out) >= MAX_WANT or size > MAX_WANT_BYTES:
            break
        out.append(key)
    return tuple(out)


def check_want(want: object) -> tuple[str, ...]:
    """A local ``want`` argument, validated (InvalidArgumentError beyond the bounds)."""
    if isinstance(want, str | bytes) or not isinstance(want, Sequence):
        raise InvalidArgumentError("want must be a sequence of memory ids")
    keys = tuple(want)
    for key in keys:
        if type(key) is not str or not 0 < len(key) <= MAX_KEY_LEN or "\x00" in key:
            raise InvalidArgumentError(f"want lists a bad memory id {key!r:.60}")
    if bounded_want(keys) != keys:
        raise InvalidArgumentError(f"want lists more than {MAX_WANT} ids or"
                                   f" {MAX_WANT_BYTES} bytes of them")
    return keys

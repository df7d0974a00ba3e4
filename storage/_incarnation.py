"""Replica incarnations: every ``Replica`` object that writes mints under an origin of its own.

A dot's replica part is an *origin* ``f"{replica_id}#{incarnation}"``
(:data:`memmesh.crdt.ORIGIN_SEP`). The incarnation is 8 random lowercase base32
characters (40 bits from ``os.urandom``), drawn when a ``Replica`` object first writes,
with a dot counter of its own in ``meta`` under ``ctr:`` + origin (dots minted before
incarnations existed keep the bare replica id and the legacy ``ctr`` counter).

Why every writing lifetime, not only a detected copy: nothing local tells a restored or
copied directory from the original, and two copies minting one dot lose writes silently
(Riak kv679). Cassandra's generation number, made random because Riak #1865 showed ids
must be unique by construction (docs/faulty-members.md, "Restored and copied replicas").
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

from memmesh.crdt import MAX_REPLICA_LEN, ORIGIN_SEP, InvalidArgumentError, check_replica

from ._env import Txn

__all__ = ["INCARNATION_LEN", "MAX_BASE_LEN", "MAX_INCARNATION_LEN", "counter_key",
           "make_origin", "new_incarnation", "own_counters"]

#: Length of a default incarnation (8 base32 characters = 40 random bits).
INCARNATION_LEN = 8
#: Longest incarnation an ``incarnation_factory`` may return.
MAX_INCARNATION_LEN = 32
#: Longest replica id that leaves room for ``#`` and a default incarnation in an origin.
MAX_BASE_LEN = MAX_REPLICA_LEN - len(ORIGIN_SEP) - INCARNATION_LEN

_LEGACY_CTR = b"ctr"  # the counter of dots minted under the bare replica id
_CTR_PREFIX = b"ctr:"


def new_incarnation() -> str:
    """A fresh random incarnation: 8 lowercase base32 characters from ``os.urandom(5)``."""
    return base64.b32encode(os.urandom(5)).decode("ascii").lower()


def make_origin(replica_id: str, factory: Callable[[], str]) -> str:
    """The origin for a new incarnation drawn from ``factory``; InvalidArgumentError when
    the factory returns something unusable (not a short non-empty str, or one holding
    ``#`` or NUL, or an origin longer than a replica id may be)."""
    incarnation = factory()
    if type(incarnation) is not str or not 0 < len(incarnation) <= MAX_INCARNATION_LEN \
            or ORIGIN_SEP in incarnation or "\x00" in incarnation:
        raise InvalidArgumentError(
            f"incarnation_factory must return a non-empty str of at most"
            f" {MAX_INCARNATION_LEN} characters without '#' or NUL, got {incarnation!r:.60}")
    origin = f"{replica_id}{ORIGIN_SEP}{incarnation}"
    if len(origin) > MAX_REPLICA_LEN:
        raise InvalidArgumentError(
            f"origin {origin!r:.60}... is longer than {MAX_REPLICA_LEN} characters")
    check_replica(origin)
    return origin


def counter_key(origin: str, replica_id: str) -> bytes:
    """The ``meta`` key of ``origin``'s dot counter (the legacy one for the bare id)."""
    return _LEGACY_CTR if origin == replica_id else _CTR_PREFIX + origin.encode()


def own_counters(txn: Txn, replica_id: str) -> dict[str, int]:
    """Every origin this directory has minted under, with its dot counter (counters set
    earlier in the same write transaction included)."""
    found = {k: int.from_bytes(v, "big") for k, v in txn.prefix("meta", _CTR_PREFIX)}
    found.update((k, v) for k, v in txn.counters.items() if k.startswith(_CTR_PREFIX))
    out = {k[len(_CTR_PREFIX):].decode(): v for k, v in found.items() if v}
    legacy = txn.counter(_LEGACY_CTR)
    if legacy:
        out[replica_id] = legacy
    return out

"""Bounds shared by the value checks, the msgpack codec and the state loaders.

Every number that arrives from a peer is bounded: replica ids, counters, nesting depth
and msgpack container sizes.  Keeping the bounds in one place keeps the local checks
(``Dot(...)``, ``ORSet.add``) and the decoder (``_codec.load``) in agreement, so that a
state that can be built locally can always be encoded and decoded again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_LIMITS",
    "LOGICAL_CEILING",
    "MAX_COUNTER",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LOGICAL",
    "MAX_REPLICA_LEN",
    "MAX_WALL_MS",
    "MIN_INT",
    "Limits",
]

#: Longest replica id accepted, in UTF-8 bytes (a uuid4 hex id has 32).
MAX_REPLICA_LEN = 128
#: Largest dot counter (fits a signed 64-bit integer).
MAX_COUNTER = 2**63 - 1
#: Largest wall-clock millisecond value of a hybrid timestamp.
MAX_WALL_MS = 2**63 - 1
#: Largest logical component of a hybrid timestamp (what a stored state may hold).
MAX_LOGICAL = 2**32 - 1
#: Largest logical component an HLC issues, and a replica accepts from a peer: the
#: same bound on both sides, so an honest replica never emits what others refuse.
#: Reaching it advances the clock's wall part by a millisecond instead (_hlc.py), so a
#: peer cannot exhaust or freeze a clock by sending a huge logical part.
LOGICAL_CEILING = 2**16
#: Range of integers msgpack can represent.
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
#: Deepest nesting of lists/dicts accepted in a plain value.
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Limits:
    """Explicit limits for :func:`memmesh.crdt.unpackb`.

    The msgpack notes (FIELD-NOTES.md) warn that a few header bytes can announce a
    4-GiB container; these limits are checked by msgpack before it allocates.
    """

    max_buffer_size: int = 32 * 1024 * 1024
    max_str_len: int = 4 * 1024 * 1024
    max_bin_len: int = 16 * 1024 * 1024
    max_array_len: int = 1_000_000
    max_map_len: int = 100_000
    max_depth: int = MAX_DEPTH


DEFAULT_LIMITS = Limits()

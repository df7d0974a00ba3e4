"""Dots: the unique name of one event.

A dot ``(replica, counter)`` names the ``counter``-th event minted by ``replica``
(Almeida, Shoker, Baquero, "Delta State Replicated Data Types", 2018, section 5).
Counters start at 1, so a version-vector entry ``n`` stands for the dots ``1..n``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import InvalidArgumentError
from ._limits import MAX_COUNTER, MAX_REPLICA_LEN

__all__ = ["ORIGIN_SEP", "Dot", "base_replica", "check_replica"]

#: Separates a replica id from an incarnation in an *origin* (the name dots are minted
#: under): ``"<replica id>#<incarnation>"``. Replica ids themselves never contain it.
ORIGIN_SEP = "#"


def check_replica(replica: object) -> str:
    """Return ``replica`` if it is a valid replica id, else raise InvalidArgumentError.

    A replica id is a non-empty ``str`` whose UTF-8 form (how it travels in msgpack and
    in storage's index keys) is at most ``MAX_REPLICA_LEN`` bytes. Bounding bytes rather
    than characters bounds everything built from ids: a summary at its origin cap always
    fits a frame, an index key always fits LMDB's key size.
    """
    if type(replica) is str and replica and replica.isascii():
        if len(replica) <= MAX_REPLICA_LEN:
            return replica
    elif type(replica) is str and replica:
        try:
            size = len(replica.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgumentError("replica id is not valid UTF-8 text") from None
        if size <= MAX_REPLICA_LEN:
            return replica
    raise InvalidArgumentError(
        f"replica id must be a non-empty str of at most {MAX_REPLICA_LEN} UTF-8 bytes,"
        f" got {replica!r:.80}"
    )


def base_replica(origin: str) -> str:
    """The replica id an origin belongs to: ``origin`` up to its last ``#`` (itself when
    it has none, as for dots minted before incarnations existed)."""
    head, sep, _ = origin.rpartition(ORIGIN_SEP)
    return head if sep else origin


@dataclass(frozen=True, order=True, slots=True)
class Dot:
    """One event: the ``counter``-th event of ``replica`` (``counter >= 1``).

    Dots order by replica id, then counter; that order is the deterministic order
    used for iteration and encoding.
    """

    replica: str
    counter: int

    def __post_init__(self) -> None:
        check_replica(self.replica)
        if type(self.counter) is not int or not 1 <= self.counter <= MAX_COUNTER:
            raise InvalidArgumentError(
                f"dot counter must be an int in 1..{MAX_COUNTER}, got {self.counter!r:.40}"
            )

    def __repr__(self) -> str:
        return f"Dot({self.replica!r}, {self.counter})"

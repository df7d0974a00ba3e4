"""The last-writer-wins register, ordered by hybrid timestamps.

State: the ``timestamp`` of the winning write and its ``value`` (``None`` and ``None``
when nothing was written).  The join keeps the greater timestamp (Shapiro, Preguiça,
Baquero, Zawirski, "A comprehensive study of CRDTs", 2011, LWW-Register).  Timestamps
of different replicas never tie, because :class:`Timestamp` ends with the replica id;
two different values under one timestamp can only come from a faulty peer, and the
canonical bytes of the values break that tie so the join stays commutative.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._canonical import freeze, packb, same_value
from ._errors import InvalidArgumentError
from ._hlc import Timestamp

__all__ = ["LWWRegister"]

V = TypeVar("V")


class LWWRegister(Generic[V]):
    """Last-writer-wins register of a plain value (see module doc).

    ``LWWRegister()`` is the empty state; ``a == b`` compares states.  Values are
    validated and normalised as plain data (``freeze``) when stored.
    """

    __slots__ = ("timestamp", "value")

    timestamp: Timestamp | None
    value: V | None

    def __init__(self, timestamp: Timestamp | None = None, value: V | None = None) -> None:
        if timestamp is not None and not isinstance(timestamp, Timestamp):
            raise InvalidArgumentError("timestamp must be a Timestamp or None")
        if timestamp is None and value is not None:
            raise InvalidArgumentError("an LWWRegister without a timestamp holds no value")
        self.timestamp = timestamp
        self.value = freeze(value)  # type: ignore[assignment]

    def write(self, value: V, timestamp: Timestamp) -> LWWRegister[V]:
        """Write ``value`` at ``timestamp``; return the delta (the register it implies).

        The write takes effect if ``timestamp`` is the greatest seen, exactly as if the
        delta had arrived from a peer.
        """
        if not isinstance(timestamp, Timestamp):
            raise InvalidArgumentError("timestamp must be a Timestamp")
        delta: LWWRegister[V] = type(self)(timestamp, value)
        self.merge(delta)
        return delta

    def merge(self, other: LWWRegister[V]) -> None:
        """Join ``other`` into this state (in place)."""
        if not isinstance(other, LWWRegister):
            raise InvalidArgumentError(f"cannot merge an LWWRegister with {type(other).__name__}")
        theirs = other.timestamp
        if theirs is None:
            return
        ours = self.timestamp
        if ours is None or theirs > ours:
            self.timestamp, self.value = theirs, other.value
        elif (
            theirs == ours
            and not same_value(self.value, other.value)
            and packb(other.value) > packb(self.value)
        ):
            self.value = other.value

    def copy(self) -> LWWRegister[V]:
        """An independent copy."""
        clone: LWWRegister[V] = type(self)()
        clone.timestamp, clone.value = self.timestamp, self.value
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LWWRegister):
            return NotImplemented
        return self.timestamp == other.timestamp and same_value(self.value, other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LWWRegister(timestamp={self.timestamp!r}, value={self.value!r})"

"""Hybrid logical clocks (Kulkarni, Demirbas, Madappa, Avva, Leone, "Logical Physical
Clocks and Consistent Snapshots in Globally Distributed Databases", OPODIS 2014).

A :class:`Timestamp` is ``(wall_ms, logical, replica)``: the largest wall time seen,
a logical counter that orders events within the same millisecond, and the replica id
as the final tie-break, so timestamps from different replicas are never equal and the
order is total.  The clock never reads time itself: the caller passes the wall clock
in milliseconds to every call (``crdt`` is pure; the shell owns the clock).

The logical part is bounded (``LOGICAL_CEILING``, the same bound storage accepts from
peers): a clock that would pass it moves its wall part on by one millisecond instead of
failing, so neither a burst of local events nor a peer's stamp can exhaust or freeze it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._dot import check_replica
from ._errors import ClockDriftError, InvalidArgumentError
from ._limits import LOGICAL_CEILING, MAX_LOGICAL, MAX_WALL_MS

__all__ = ["DEFAULT_MAX_DRIFT_MS", "HLC", "Timestamp"]

#: Default bound on how far a remote timestamp may run ahead of the local wall clock.
DEFAULT_MAX_DRIFT_MS = 600_000


def _check_wall(wall_ms: object, what: str = "wall_ms") -> int:
    if type(wall_ms) is not int or not 0 <= wall_ms <= MAX_WALL_MS:
        raise InvalidArgumentError(
            f"{what} must be an int in 0..{MAX_WALL_MS}, got {wall_ms!r:.40}"
        )
    return wall_ms


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    """A hybrid timestamp, totally ordered by ``(wall_ms, logical, replica)``."""

    wall_ms: int
    logical: int
    replica: str

    def __post_init__(self) -> None:
        _check_wall(self.wall_ms)
        if type(self.logical) is not int or not 0 <= self.logical <= MAX_LOGICAL:
            raise InvalidArgumentError(
                f"logical must be an int in 0..{MAX_LOGICAL}, got {self.logical!r:.40}"
            )
        check_replica(self.replica)


class HLC:
    """A hybrid logical clock owned by one replica.

    ``now(wall_ms)`` stamps a local event; ``observe(remote, wall_ms)`` stamps the
    receipt of a remote event so that it orders after it (the HLC receive rule).
    ``observe`` refuses, with :class:`ClockDriftError` and no change, a remote timestamp
    more than ``max_drift_ms`` ahead of the local wall clock, so one peer with a broken
    clock cannot drag every clock in the fleet into the future.  The logical part stays
    at most :data:`~memmesh.crdt.LOGICAL_CEILING`: past it the wall part advances
    by a millisecond (neither call ever fails for lack of logical values).
    """

    __slots__ = ("_last", "max_drift_ms", "replica")

    def __init__(
        self,
        replica: str,
        *,
        max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
        last: Timestamp | None = None,
    ) -> None:
        self.replica = check_replica(replica)
        if type(max_drift_ms) is not int or max_drift_ms < 0:
            raise InvalidArgumentError("max_drift_ms must be a non-negative int")
        self.max_drift_ms = max_drift_ms
        if last is not None and not isinstance(last, Timestamp):
            raise InvalidArgumentError("last must be a Timestamp or None")
        self._last = last

    @property
    def last(self) -> Timestamp | None:
        """The latest timestamp issued (or restored at construction), if any."""
        return self._last

    def check(self, remote: Timestamp, wall_ms: int) -> None:
        """Raise :class:`ClockDriftError` if ``remote`` is too far ahead of ``wall_ms``."""
        if not isinstance(remote, Timestamp):
            raise InvalidArgumentError(f"expected a Timestamp, got {remote!r:.40}")
        _check_wall(wall_ms)
        if remote.wall_ms > wall_ms + self.max_drift_ms:
            raise ClockDriftError(
                f"remote timestamp from {remote.replica!r} is {remote.wall_ms - wall_ms} ms"
                f" ahead of the local clock (max drift {self.max_drift_ms} ms)"
            )

    def now(self, wall_ms: int) -> Timestamp:
        """A timestamp for a local event, greater than every timestamp issued before.

        Monotonic even when the wall clock goes backwards: the logical part grows, and
        at :data:`LOGICAL_CEILING` the wall part moves on by one millisecond instead.
        """
        _check_wall(wall_ms)
        last = self._last
        if last is None or wall_ms > last.wall_ms:
            stamp = Timestamp(wall_ms, 0, self.replica)
        else:
            stamp = self._after(last.wall_ms, last.logical)
        self._last = stamp
        return stamp

    def observe(self, remote: Timestamp, wall_ms: int) -> Timestamp:
        """Merge a remote timestamp; return a local timestamp greater than both."""
        self.check(remote, wall_ms)
        last = self._last
        last_wall = -1 if last is None else last.wall_ms
        wall = max(last_wall, remote.wall_ms, wall_ms)
        if last is not None and wall == last.wall_ms == remote.wall_ms:
            stamp = self._after(wall, max(last.logical, remote.logical))
        elif last is not None and wall == last.wall_ms:
            stamp = self._after(wall, last.logical)
        elif wall == remote.wall_ms:
            stamp = self._after(wall, remote.logical)
        else:
            stamp = Timestamp(wall, 0, self.replica)
        self._last = stamp
        return stamp

    def _after(self, wall_ms: int, logical: int) -> Timestamp:
        """The least timestamp of this clock after ``(wall_ms, logical)``: the next logical
        value, or the next millisecond once the logical part reached its ceiling. Never
        fails, so no timestamp a peer sends (nor one restored from disk) can exhaust or
        freeze the clock; the ceiling is the bound sync accepts from peers, so the stamps
        issued here are always accepted elsewhere."""
        if logical >= LOGICAL_CEILING:
            return Timestamp(wall_ms + 1, 0, self.replica)
        return Timestamp(wall_ms, logical + 1, self.replica)

    def __repr__(self) -> str:
        return f"HLC({self.replica!r}, max_drift_ms={self.max_drift_ms}, last={self._last!r})"

"""Who is wrong when clocks disagree: peers' HELLO wall times, and the write fence.

Every HELLO carries its sender's wall clock.  On receipt the policy records the peer's
clock relative to our *monotonic* clock (``peer_wall - now``), so the estimate of the
offset ``peer - us`` stays right while time passes, and it moves at once when *our*
wall clock is stepped (an NTP fix): ``offset(t) = peer_wall + (t - t_heard) - wall(t)``.
The error is one network latency, negligible against the drift bound.

The rule (CockroachDB's choice: a node beyond the max offset stops itself rather than
stamp the future; FIELD-NOTES.md): this member fences its own writes when its clock is
more than ``max_drift_ms`` ahead of a strict majority of the peers it has heard from.
With one peer the one ahead fences, because a stamp in the future cannot be undone
(receivers refuse it, and LWW keeps it where it was accepted) while a slow clock only
delays.  A member that is *behind* never fences.  The fence lifts as soon as the same
evidence no longer holds (our clock stepped back, or newer HELLOs).  Records of peers
that are no longer linked expire after ``ttl`` seconds.

A key holder can forge HELLO times under many ids and so make a node fence its writes
(a loss of write availability, visible in ``status()``, never of data); that is the
price of believing a majority.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["ClockWatch"]


@dataclass(slots=True)
class _Heard:
    base_ms: float  # the peer's wall clock minus our monotonic clock, in ms
    at: float  # our monotonic time of the HELLO


class ClockWatch:
    """Peer clock offsets and the fence verdict; pure (times are arguments)."""

    def __init__(self, max_drift_ms: int, *, ttl: float = 3600.0) -> None:
        self.max_drift_ms = max_drift_ms
        self.ttl = ttl
        self._heard: dict[str, _Heard] = {}

    def heard(self, peer: str, peer_wall_ms: int, now: float) -> None:
        """``peer`` said its wall clock read ``peer_wall_ms`` (0: it did not say)."""
        if peer_wall_ms > 0:
            self._heard[peer] = _Heard(peer_wall_ms - now * 1000.0, now)

    def offset_ms(self, peer: str, now: float, wall_ms: int) -> int | None:
        """The peer's clock minus ours (ms) now; None if never heard."""
        h = self._heard.get(peer)
        return None if h is None else round(h.base_ms + now * 1000.0 - wall_ms)

    def forget_expired(self, now: float, linked: Collection[str]) -> None:
        for peer in [p for p, h in self._heard.items()
                     if p not in linked and now - h.at > self.ttl]:
            del self._heard[peer]

    def verdict(self, now: float, wall_ms: int, linked: Collection[str] = ()) -> str | None:
        """Why our writes must be fenced, or None when our clock agrees well enough."""
        self.forget_expired(now, linked)
        if not self._heard:
            return None
        offsets = [self.offset_ms(p, now, wall_ms) or 0 for p in sorted(self._heard)]
        behind_us = sorted(-o for o in offsets if -o > self.max_drift_ms)
        if 2 * len(behind_us) <= len(offsets):
            return None
        return (f"this clock is {behind_us[0] // 1000} s or more ahead of {len(behind_us)} "
                f"of {len(offsets)} peers (max drift {self.max_drift_ms // 1000} s): local "
                f"writes are fenced until the clock is fixed (check NTP)")

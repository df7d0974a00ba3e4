"""Who is wrong when clocks disagree: peers' HELLO wall times, and the write fence.

Each HELLO's wall time is kept relative to our monotonic clock, so the offset estimate
``peer - us`` stays right as time passes and follows our own wall clock's steps (its
error is one network latency). This member fences its writes while its clock is more
than ``max_drift_ms`` ahead of a strict majority of the peers heard from (with one peer,
the one ahead fences): CockroachDB's choice, since a stamp in the future cannot be undone
while a slow clock only delays. The rules and what a forger can do with them:
docs/faulty-members.md, "Clocks: who is wrong".
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

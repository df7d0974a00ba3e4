"""Per-node wall clocks with skew, driven by the simulated time.

A replica reads time only through the ``clock`` callable it is opened with
(``Replica.open(..., clock=...)``); the simulator hands each node a ``SkewedClock`` that
returns ``EPOCH_MS + simulated ms + skew``. Skew is fixed per node for a run and drawn
uniformly from ``[-max_skew, +max_skew]``, so hybrid logical clocks (Kulkarni et al.,
"Logical Physical Clocks", 2014) and the drift check in ``memmesh.crdt.HLC`` see the
same disagreement real hosts have.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import US_PER_MS, EventLoop

# 2024-01-01T00:00:00Z: a fixed origin so wall times, and every HLC timestamp derived
# from them, are the same in every run.
EPOCH_MS = 1_704_067_200_000


@dataclass(slots=True)
class SkewedClock:
    """``clock()`` -> wall milliseconds as this node believes them."""

    loop: EventLoop
    skew_ms: int = 0

    def __call__(self) -> int:
        return EPOCH_MS + self.loop.now_us // US_PER_MS + self.skew_ms

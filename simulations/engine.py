"""A deterministic discrete-event loop: a heap of ``(time_us, seq, action)``.

Time is an integer number of simulated microseconds, never read from the host, so a
run depends on nothing but its inputs. Ties in time are broken by ``seq``, the order in
which events were scheduled, which makes the schedule a total order and every run with
the same seed replay the same interleaving (the classic event-list design of discrete
event simulation, e.g. Fishman, *Discrete-Event Simulation*, 2001, ch. 5).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

Action = Callable[[], None]

US_PER_MS = 1_000
US_PER_S = 1_000_000


@dataclass(slots=True)
class Timer:
    """A scheduled action; ``cancel()`` makes the loop skip it when its time comes."""

    time_us: int
    action: Action
    cancelled: bool = field(default=False)

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """The simulated clock and its agenda.

    ``call_at``/``call_later`` schedule an action; ``run`` pops events in time order
    until the agenda is empty, a time limit is reached, or ``stop()`` is called.
    """

    def __init__(self) -> None:
        self._now_us = 0
        self._seq = 0
        self._heap: list[tuple[int, int, Timer]] = []
        self._stopped = False
        self.events_run = 0

    @property
    def now_us(self) -> int:
        return self._now_us

    @property
    def now_ms(self) -> float:
        return self._now_us / US_PER_MS

    def call_at(self, time_us: int, action: Action) -> Timer:
        """Run ``action`` at simulated time ``time_us`` (never earlier than now)."""
        when = max(int(time_us), self._now_us)
        timer = Timer(when, action)
        heapq.heappush(self._heap, (when, self._seq, timer))
        self._seq += 1
        return timer

    def call_later(self, delay_us: int, action: Action) -> Timer:
        return self.call_at(self._now_us + max(0, int(delay_us)), action)

    def stop(self) -> None:
        """Make ``run`` return after the current event."""
        self._stopped = True

    def pending(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    def run(self, until_us: int | None = None) -> None:
        """Run events in (time, seq) order up to and including ``until_us``.

        When ``until_us`` is given the clock ends exactly there, so consecutive calls
        advance time in fixed steps even when the agenda has gaps.
        """
        self._stopped = False
        heap = self._heap
        while heap and not self._stopped:
            when, _, timer = heap[0]
            if until_us is not None and when > until_us:
                break
            heapq.heappop(heap)
            if timer.cancelled:
                continue
            self._now_us = when
            self.events_run += 1
            timer.action()
        if until_us is not None and not self._stopped and self._now_us < until_us:
            self._now_us = until_us

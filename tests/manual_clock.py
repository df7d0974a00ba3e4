"""The wall clock tests inject (``Replica.open(clock=...)``, indexes, stores): Unix
milliseconds that a test moves by hand, never by sleeping. With ``tick_ms`` every read
also moves it, so successive writes get distinct wall times."""

from __future__ import annotations

START_MS = 1_700_000_000_000


class Clock:
    """A settable wall clock in milliseconds (see module doc)."""

    def __init__(self, now_ms: int = START_MS, *, tick_ms: int = 0) -> None:
        self.now_ms = now_ms
        self.tick_ms = tick_ms

    def __call__(self) -> int:
        self.now_ms += self.tick_ms
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms

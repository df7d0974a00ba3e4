"""A plain-text progress bar on stderr (no dependency).

On a terminal the bar redraws in place with ``\\r``; elsewhere (CI logs, pipes) it prints
a line at every tenth of the way, so logs stay short. It writes only to its stream and
never to the report, so it cannot disturb a run's determinism.
"""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool = True
    ) -> None:
        self.label = label
        self.total = max(1, total)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_shown = -1

    def update(self, done: int, note: str = "") -> None:
        """Set the amount of work done (0..total) and redraw when it is worth it."""
        self.done = max(0, min(int(done), self.total))
        if not self.enabled:
            return
        percent = 100 * self.done // self.total
        if self._tty:
            if percent == self._last_shown and self.done != self.total:
                return
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {note}\x1b[K")
            self.stream.flush()
            self._last_shown = percent
        else:
            decile = percent // 10
            if decile == self._last_shown:
                return
            self._last_shown = decile
            self.stream.write(f"{self.label}: {percent}% {note}\n")
            self.stream.flush()

    def close(self, note: str = "") -> None:
        self.update(self.total, note)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

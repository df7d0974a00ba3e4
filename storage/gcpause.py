"""Pause Python's cyclic garbage collector around bulk work of the replica.

``sync_apply`` decodes thousands of key states and ``with replica.batch():`` keeps every
write function of the batch for replay (see :mod:`.env`), so both allocate many
container objects that stay alive until they end. Each allocation burst triggers the
collector, and its full collections walk every live object of the process: measured
here, 20-35% of a 20k-memory ``sync_apply`` or batch of adds was spent in collections
that found nothing (the replica's own objects form no cycles; reference counting frees
them). Pausing the collector for the duration of the bulk call removes that cost; it
resumes when the outermost pause ends, so cycles made meanwhile (by other threads, or
by user code inside a batch) are collected then, only later.

The pause nests and is shared by threads: the collector is disabled when the first
pause begins (if it was enabled) and re-enabled when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_disabled_by_us = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the ``with`` block with the cyclic garbage collector paused (see module doc)."""
    global _depth, _disabled_by_us
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _disabled_by_us = True
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _disabled_by_us:
                _disabled_by_us = False
                gc.enable()

"""Pause Python's cyclic garbage collector around ``sync_apply``, only when no other
thread can be affected.

``sync_apply`` decodes thousands of key states, container objects that form no cycles
and stay alive until it ends; each allocation burst triggers the collector, whose
collections find nothing. ``gc.disable`` is process-wide, so the pause is taken only
while the calling thread is the only Python thread (a simulation, a benchmark, a
one-shot tool); in a threaded host (the trio node, an agent framework) the collector
keeps running.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the collector paused if this is the process's only thread and
    the collector is on (a nested pause leaves it to the outer one)."""
    if threading.active_count() > 1 or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

"""Deterministic memory ids for a run.

``Replica.add`` names a memory with ``uuid.uuid4().hex``: right for real fleets, but it
would make every run different (memory ids feed digests' bucket layout and the arbiter
election's hash). During a run the simulator swaps the ``uuid`` module seen by
``memmesh.storage.memory`` for one whose ``uuid4`` draws from the run's seeded stream,
and restores it afterwards. Nothing else in storage changes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from .rng import derive_seed


@contextmanager
def deterministic_ids(seed: int) -> Iterator[None]:
    """Within the block, new memory ids come from a stream seeded by ``seed``."""
    from memmesh.storage import memory

    rng = random.Random(derive_seed(seed, "memory-ids"))

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    original = memory.uuid
    memory.uuid = SimpleNamespace(uuid4=uuid4)  # type: ignore[assignment]
    try:
        yield
    finally:
        memory.uuid = original

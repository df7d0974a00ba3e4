"""Deterministic memory ids for a run.

``Replica.add`` names a memory with a random uuid4 hex string: right for real fleets,
but it would make every run different (memory ids feed the digest's bucket layout and
the arbiter election's hash). During a run the simulator swaps storage's id minting
(``memmesh.storage.memory.new_memory_id``, or the ``uuid`` module it used before) for
one that draws uuid4-shaped ids from the run's seeded stream, and restores it
afterwards. Nothing else in storage changes. (A supported hook, e.g. an ``ids``
option of ``Replica.open``, would make this patch unnecessary.)
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

    def new_memory_id() -> str:
        return uuid4().hex

    if hasattr(memory, "new_memory_id"):
        name, replacement = "new_memory_id", new_memory_id
    elif hasattr(memory, "uuid"):
        name, replacement = "uuid", SimpleNamespace(uuid4=uuid4)  # type: ignore[assignment]
    else:  # pragma: no cover - storage changed how it mints ids
        raise RuntimeError("memmesh.storage.memory mints ids in an unknown way")
    original = getattr(memory, name)
    setattr(memory, name, replacement)
    try:
        yield
    finally:
        setattr(memory, name, original)

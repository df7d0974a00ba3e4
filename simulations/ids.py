"""Deterministic memory ids for a run.

``Replica.add`` names a memory with a random 128-bit hex id: right for real fleets, but
it would make every run different (memory ids feed the digest's bucket layout and the
arbiter election's hash). Each simulated node opens its replica with
``Replica.open(..., id_factory=memory_ids(seed, node_id))``: ids drawn from a stream
seeded by the run seed and the node, shaped like ``uuid4().hex``, unique per node and
independent of event interleaving.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from .rng import stream


def memory_ids(seed: int, node_id: str) -> Callable[[], str]:
    """A seeded source of uuid4-shaped hex ids for ``node_id`` in run ``seed``."""
    rng = stream(seed, "memory-ids", node_id)

    def new_id() -> str:
        return uuid.UUID(int=rng.getrandbits(128), version=4).hex

    return new_id

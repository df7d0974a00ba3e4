"""Deterministic memory ids and replica incarnations for a run.

``Replica.add`` names a memory with a random 128-bit hex id: right for real fleets, but
it would make every run different (memory ids feed the digest's bucket layout and the
arbiter election's hash). Each simulated node opens its replica with
``Replica.open(..., id_factory=memory_ids(seed, node_id))``: ids drawn from a stream
seeded by the run seed and the node, shaped like ``uuid4().hex``, unique per node and
independent of event interleaving.

Incarnations likewise: a ``Replica`` draws a random incarnation at its first write (the
origin its dots are minted under), so each node opens its replica with
``incarnation_factory=incarnations(seed, node_id)``: one seeded stream per node, drawn
once by each start that writes, so a restarted node mints under a new origin and
``report.json`` stays byte-identical per seed.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

from .rng import stream


def memory_ids(seed: int, node_id: str) -> Callable[[], str]:
    """A seeded source of uuid4-shaped hex ids for ``node_id`` in run ``seed``."""
    rng = stream(seed, "memory-ids", node_id)

    def new_id() -> str:
        return uuid.UUID(int=rng.getrandbits(128), version=4).hex

    return new_id


def incarnations(seed: int, node_id: str) -> Callable[[], str]:
    """A seeded source of incarnations (8 lowercase base32 characters, like the default
    ``memmesh.storage._incarnation.new_incarnation``) for ``node_id`` in run ``seed``."""
    rng = stream(seed, "incarnations", node_id)

    def new_incarnation() -> str:
        return base64.b32encode(rng.getrandbits(40).to_bytes(5, "big")).decode().lower()

    return new_incarnation

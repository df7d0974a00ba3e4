"""Independent, named random streams derived from one run seed.

Every source of randomness in a run (each link's latency, each node's peer choice, the
fault schedule, the workload) draws from its own ``random.Random`` seeded by a SHA-256
of the run seed and the stream's name. Adding a node or a fault therefore does not shift
the draws of unrelated streams, and nothing depends on ``PYTHONHASHSEED`` or the host.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *labels: object) -> int:
    """A 64-bit seed for the stream named by ``labels`` under run seed ``seed``."""
    text = "/".join([str(int(seed)), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stream(seed: int, *labels: object) -> random.Random:
    """A fresh ``random.Random`` for the named stream."""
    return random.Random(derive_seed(seed, *labels))

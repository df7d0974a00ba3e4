"""Known peers remembered across restarts, and reconnect back-off with jitter.

Peers are stored in the replica's local-only auxiliary store (never replicated) under
``("memmesh.gossip", b"peers")`` as a small msgpack list, newest first, bounded so a
churning fleet cannot grow it without limit (memberlist #253: collect departed members).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from memmesh.crdt.codec import packb, unpackb
from memmesh.crdt.errors import MemmeshError

from .protocol.replica import NodeReplica

__all__ = ["AUX_KEY", "AUX_NAMESPACE", "KnownPeer", "backoff_delay", "load_peers", "save_peers"]

AUX_NAMESPACE = "memmesh.gossip"
AUX_KEY = b"peers"
MAX_KNOWN = 64


@dataclass(frozen=True, slots=True)
class KnownPeer:
    replica_id: str
    host: str
    port: int
    last_seen_ms: int


def load_peers(replica: NodeReplica) -> list[KnownPeer]:
    """Known peers from ``replica.aux_get``; an unreadable record counts as empty."""
    try:
        raw = replica.aux_get(AUX_NAMESPACE, AUX_KEY)
    except (AttributeError, MemmeshError):
        return []
    if not raw:
        return []
    try:
        items = unpackb(raw)
    except MemmeshError:
        return []
    out = []
    for item in items if isinstance(items, tuple) else ():
        if (isinstance(item, tuple) and len(item) == 4 and isinstance(item[0], str)
                and isinstance(item[1], str) and type(item[2]) is int
                and 0 < item[2] < 65536 and type(item[3]) is int):
            out.append(KnownPeer(*item))
    return out[:MAX_KNOWN]


def save_peers(replica: NodeReplica, peers: list[KnownPeer]) -> None:
    """Persist at most ``MAX_KNOWN`` peers, newest first, one entry per replica id."""
    seen: set[str] = set()
    rows = []
    for p in sorted(peers, key=lambda p: -p.last_seen_ms):
        if p.replica_id in seen:
            continue
        seen.add(p.replica_id)
        rows.append((p.replica_id, p.host, p.port, p.last_seen_ms))
    replica.aux_put(AUX_NAMESPACE, AUX_KEY, packb(rows[:MAX_KNOWN]))


def backoff_delay(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential back-off with "equal jitter": uniform in [d/2, d], d = base * 2**n."""
    d = min(cap, base * (2 ** min(failures, 30)))
    return rng.uniform(d / 2, d)

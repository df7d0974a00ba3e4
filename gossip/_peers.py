"""Peer addresses: parsing ``host:port``, known peers remembered across restarts, and
reconnect back-off with jitter.

Known peers are stored in the replica's local-only auxiliary store (never replicated)
under ``("memmesh.gossip", b"peers")`` as a small msgpack list, newest first, bounded so
a churning fleet cannot grow it without limit (memberlist #253: collect departed
members).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from memmesh.crdt import MemmeshError, packb, unpackb

from .protocol import GossipError, NodeReplica

__all__ = ["AUX_KEY", "AUX_NAMESPACE", "AddressError", "KnownPeer", "PeerBook",
           "at_doubling", "backoff_delay", "format_address", "load_peers", "parse_address",
           "parse_addresses", "save_peers"]

AUX_NAMESPACE = "memmesh.gossip"
AUX_KEY = b"peers"
MAX_KNOWN = 64


class AddressError(GossipError, ValueError):
    """A peer address that is not ``HOST:PORT`` with a port in 1..65535."""


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` (an IPv6 host in brackets: ``"[::1]:7400"``) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(f"want HOST:PORT, got {text!r}")
    if ":" in host and not bracketed:
        raise AddressError(f"an IPv6 address goes in brackets: [{host}]:{port}, "
                           f"got {text!r}")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    """``(host, port)`` as ``parse_address`` reads it back (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addresses(texts: Iterable[str]) -> list[tuple[str, int]]:
    """:func:`parse_address` of each (seed lists from the command line)."""
    return [parse_address(t) for t in texts]


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


class PeerBook:
    """Where the peers a node linked with listen: loaded at start (to dial them again),
    updated as peers register, saved on the way out.  Call ``load`` and ``save`` in
    the node's storage thread."""

    __slots__ = ("_known", "_own")

    def __init__(self, own_id: str) -> None:
        self._own = own_id
        self._known: dict[str, KnownPeer] = {}

    def load(self, replica: NodeReplica) -> list[KnownPeer]:
        """The persisted peers other than this replica."""
        for kp in load_peers(replica):
            self._known[kp.replica_id] = kp
        return [kp for kp in self._known.values() if kp.replica_id != self._own]

    def remember(self, replica_id: str, address: tuple[str, int], now_ms: int) -> None:
        self._known[replica_id] = KnownPeer(replica_id, address[0], address[1], now_ms)

    def save(self, replica: NodeReplica) -> None:
        if self._known:
            save_peers(replica, list(self._known.values()))


def at_doubling(count: int) -> bool:
    """True at counts 1, 2, 4, 8, ...: log a repeating failure once per doubling of its
    count (and of the back-off), not at every retry."""
    return count > 0 and count & (count - 1) == 0


def backoff_delay(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential back-off with "equal jitter": uniform in [d/2, d], d = base * 2**n."""
    d = min(cap, base * (2 ** min(failures, 30)))
    return rng.uniform(d / 2, d)

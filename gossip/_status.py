"""Plain, immutable snapshots of a node's state for ``node.status()`` and the CLI, and
:func:`node_status`, which takes one from the policy's counters, the links' bytes and
the dialer's records of the seeds: for each peer and each configured seed, what an
operator asks first (state, last contact, last error, lag, bytes, refusals)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .protocol import PeerLink, SyncPolicy, summary_lag

__all__ = ["LinkCounters", "NodeStatus", "PeerStatus", "SeedStatus", "SeedView", "node_status"]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer.

    ``lag``: events of this replica that the peer's last known summary lacks (None until
    the peer sent a summary).  Times are Unix seconds (``last_sync`` None: no completed
    pull yet).  Bytes count TLS payload, i.e. protocol frames, of the current link.
    ``syncs``, ``refusals`` (states it sent that our replica skipped, by reason) and
    ``errors`` (its links closed by a fault, all reasons; ``last_error`` the latest) count
    since this node started, across reconnects.  ``clock_offset_ms``: its wall clock
    minus ours, from its HELLO (None: it did not say).  Digest repair: ``repairs`` (repair
    pulls we ran with it), ``repaired`` (keys they fetched that its watermarks had not
    shipped), ``false_claims`` (watermarks it claimed that a state later proved false).
    ``last_contact``: when bytes last came from it (Unix seconds).
    """

    replica_id: str
    address: tuple[str, int] | None
    direction: str
    connected_at: float
    last_sync: float | None
    lag: int | None
    bytes_in: int
    bytes_out: int
    syncs: int
    refusals: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str | None = None
    clock_offset_ms: int | None = None
    repairs: int = 0
    repaired: int = 0
    false_claims: int = 0
    last_contact: float | None = None


@dataclass(frozen=True, slots=True)
class SeedStatus:
    """One configured seed.  ``state``: ``connected`` (its peer has a link now, whoever
    dialled), else the dialer's: ``connecting``, ``unreachable`` (no TCP connection),
    ``refused`` (TLS or the peer's HELLO refused us: ``last_error`` says which, e.g. a
    wrong cluster key) or ``closed`` (its link closed; redialling).  ``failures``: in a
    row.  ``peer_id``, ``lag``, ``bytes_in``/``bytes_out`` and ``refusals`` are those of
    its peer while connected (see :class:`PeerStatus`).  Times are Unix seconds."""

    address: tuple[str, int]
    state: str
    peer_id: str | None = None
    last_contact: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    lag: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node as a whole.  ``write_fence``: why local writes are fenced (e.g. this
    clock runs ahead of its peers'), None when they are not.  ``refusals`` and
    ``errors`` sum every peer's; ``dropped`` counts connections this node closed to
    protect its resources, by reason.  ``repairs``, ``repaired``: digest repair pulls run
    and keys they repaired, all peers; ``lowered``: watermarks proved false and lowered.
    ``bytes_in``/``bytes_out`` count every link since the node started (they never go
    down when a peer leaves); ``seeds``: each configured seed; ``bind``: why the node
    listens on ``host`` (e.g. loopback only, since no seed is off this machine);
    ``writes``: local writes seen in the journal by delivery mode (``push``, ``pull``);
    ``revocations``: credential revocations the replica holds (and gossips)."""

    replica_id: str
    host: str
    port: int
    secure: bool
    peers: tuple[PeerStatus, ...]
    bytes_in: int
    bytes_out: int
    syncs: int
    pushes: int
    rejected_busy: int
    write_fence: str | None = None
    refusals: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    repairs: int = 0
    repaired: int = 0
    lowered: int = 0
    seeds: tuple[SeedStatus, ...] = ()
    bind: str = ""
    writes: dict[str, int] = field(default_factory=dict)
    revocations: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return asdict(self)


class LinkCounters(Protocol):
    """What a status snapshot reads of a connection (``gossip._link.Link``)."""

    @property
    def address(self) -> tuple[str, int] | None: ...

    @property
    def connected_at(self) -> float: ...

    @property
    def bytes_in(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...

    @property
    def last_contact(self) -> float: ...


class SeedView(Protocol):
    """What a status snapshot reads of a seed's dial record (``gossip._dialer.DialRecord``)."""

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def state(self) -> str: ...

    @property
    def failures(self) -> int: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def last_error_at(self) -> float | None: ...

    @property
    def last_contact(self) -> float | None: ...


def node_status(policy: SyncPolicy, links: Mapping[PeerLink, LinkCounters], *, host: str,
                port: int, secure: bool, write_fence: str | None, now: float, wall_ms: int,
                unix: float, seeds: Sequence[tuple[SeedView, str | None]] = (),
                closed_bytes: tuple[int, int] = (0, 0), bind: str = "",
                revocations: int = 0) -> NodeStatus:
    """The snapshot of a node whose policy is ``policy`` and whose connections are
    ``links``; ``now`` is the policy's clock, ``unix`` the same instant in Unix seconds.
    ``seeds``: each seed's dial record with the replica id last seen there;
    ``closed_bytes``: bytes in and out of the links that have closed."""
    mine = policy.last_summary
    peers = []
    for rid, plink in sorted(policy.registered.items()):
        link = links.get(plink)
        theirs = plink.session.peer_summary
        lag = summary_lag(mine, theirs) if mine is not None and theirs is not None else None
        stats = policy.peers.get(rid)
        last_sync = None if stats is None or stats.last_sync is None \
            else unix - (now - stats.last_sync)
        peers.append(PeerStatus(
            replica_id=rid, address=None if link is None else link.address,
            direction="out" if plink.outbound else "in",
            connected_at=unix if link is None else link.connected_at,
            last_sync=last_sync, lag=lag,
            bytes_in=0 if link is None else link.bytes_in,
            bytes_out=0 if link is None else link.bytes_out,
            syncs=0 if stats is None else stats.syncs,
            refusals={} if stats is None else dict(sorted(stats.refusals.items())),
            errors=0 if stats is None else sum(stats.errors.values()),
            last_error=None if stats is None else stats.last_error,
            clock_offset_ms=policy.clock.offset_ms(rid, now, wall_ms),
            repairs=0 if stats is None else stats.repairs,
            repaired=0 if stats is None else stats.repaired,
            false_claims=0 if stats is None else stats.false_claims,
            last_contact=None if link is None else link.last_contact))
    every = list(links.values())
    refusals, errors = policy.peers.totals()
    counters = policy.counters
    return NodeStatus(
        replica_id=policy.replica_id, host=host, port=port, secure=secure,
        peers=tuple(peers), bytes_in=closed_bytes[0] + sum(lk.bytes_in for lk in every),
        bytes_out=closed_bytes[1] + sum(lk.bytes_out for lk in every), syncs=counters["syncs"],
        pushes=counters["pushes"], rejected_busy=counters["busy"], write_fence=write_fence,
        refusals=dict(sorted(refusals.items())), errors=dict(sorted(errors.items())),
        dropped={k.split(":", 1)[1]: n for k, n in sorted(counters.items())
                 if k.startswith("dropped:")},
        repairs=counters["repairs"], repaired=counters["repaired"],
        lowered=counters["lowered"], bind=bind,
        writes={k.split(":", 1)[1]: n for k, n in sorted(counters.items())
                if k.startswith("writes:")}, revocations=revocations,
        seeds=tuple(_seed_status(record, rid, {p.replica_id: p for p in peers})
                    for record, rid in seeds))


def _seed_status(record: SeedView, rid: str | None,
                 peers: Mapping[str, PeerStatus]) -> SeedStatus:
    peer = None if rid is None else peers.get(rid)
    if peer is None:
        return SeedStatus(
            address=record.address, state="closed" if record.state == "linked" else
            record.state, peer_id=rid, last_contact=record.last_contact,
            last_error=record.last_error, last_error_at=record.last_error_at,
            failures=record.failures)
    return SeedStatus(
        address=record.address, state="connected", peer_id=rid,
        last_contact=peer.last_contact, last_error=record.last_error,
        last_error_at=record.last_error_at, failures=record.failures, lag=peer.lag,
        bytes_in=peer.bytes_in, bytes_out=peer.bytes_out, refusals=dict(peer.refusals))

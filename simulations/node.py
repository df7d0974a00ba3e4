"""One simulated agent process: a storage ``Replica`` plus gossip ``Session``s.

This is the simulator's stand-in for the trio shell of ``memmesh.gossip``: it owns no
protocol logic. Each link is a real ``memmesh.gossip.protocol.Session``; the node feeds
it the bytes its simulated connection delivers and the simulated time, and does what
the session's events ask (``events.py`` of the protocol core): take a summary of the
replica, compute changes for a peer's summary limited to what that peer may see, apply
received changes, acknowledge them. The replica is a real LMDB ``Replica`` opened with
the node's skewed simulated clock.

Peer selection is the anti-entropy of Demers et al. ("Epidemic algorithms for
replicated database maintenance", 1987): every round the node pulls from one peer chosen
uniformly at random among the members it knows, and the peer pulls back on the same
link (push-pull). A node keeps at most ``max_links`` links open, so fleets of a
thousand nodes do not hold a full mesh; new local writes are pushed at once on the
links that are open.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memmesh.crdt import MemmeshError
from memmesh.gossip.protocol import events as ev
from memmesh.gossip.protocol.errors import ProtocolError
from memmesh.gossip.protocol.session import Session, State
from memmesh.gossip.protocol.summary import watermarks

from .clock import SkewedClock
from .engine import US_PER_S, Timer
from .transport import Connection

if TYPE_CHECKING:
    from .cluster import Cluster

FINGERPRINT = b"memmesh-simulation"


@dataclass(eq=False, slots=True)
class Link:
    """A connection and the protocol session running on it."""

    conn: Connection
    session: Session
    peer: str
    initiator: bool
    timer: Timer | None = None
    deadline: float | None = None
    last_used_us: int = 0
    want_pull: bool = False


@dataclass(eq=False)
class SimNode:
    """A node of the simulated fleet (see the module docstring)."""

    cluster: Cluster
    node_id: str
    path: Path
    clock: SkewedClock
    rng: random.Random
    new_id: Callable[[], str]  # seeded memory ids (simulations.ids.memory_ids)
    new_incarnation: Callable[[], str]  # seeded incarnations (simulations.ids.incarnations)
    scope: Any = None  # storage PeerScope: what this node may receive (None: all)
    max_links: int = 4
    replica: Any = None
    up: bool = False
    links: dict[int, Link] = field(default_factory=dict)
    round_timer: Timer | None = None
    conflicted: set[str] = field(default_factory=set)
    draining: bool = False
    incarnation: int = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the replica (creating or reopening it) and start gossiping."""
        from memmesh.storage import Replica

        self.replica = Replica.open(
            self.path, replica_id=self.node_id, durable=False, clock=self.clock,
            id_factory=self.new_id, incarnation_factory=self.new_incarnation,
        )
        self.up = True
        self.incarnation += 1
        self.cluster.transport.listen(self.node_id, self._accept)
        loop = self.cluster.loop
        interval = self.cluster.interval_us
        self.round_timer = loop.call_later(round(self.rng.uniform(0, interval)), self._round)

    def crash(self) -> None:
        """Stop at once: connections vanish, sessions are lost, the replica survives."""
        if not self.up:
            return
        self._halt()
        self.cluster.transport.unlisten(self.node_id)
        self.links.clear()
        self.replica.close()
        self.replica = None

    def stop(self) -> None:
        """Leave gracefully: say goodbye on every link, then close the replica."""
        if not self.up:
            return
        for link in list(self.links.values()):
            link.session.close()
            self._flush(link)
        self.crash()

    def _halt(self) -> None:
        self.up = False
        self.draining = False
        if self.round_timer is not None:
            self.round_timer.cancel()
            self.round_timer = None
        for link in self.links.values():
            if link.timer is not None:
                link.timer.cancel()

    @property
    def now(self) -> float:
        """The session clock: simulated seconds (sessions only compare differences)."""
        return self.cluster.loop.now_us / US_PER_S

    # ------------------------------------------------------------------ rounds

    def _round(self) -> None:
        if not self.up:
            return
        cluster = self.cluster
        interval = cluster.interval_us
        self.round_timer = cluster.loop.call_later(
            round(interval * self.rng.uniform(0.9, 1.1)), self._round
        )
        cluster.on_round(self)
        peer = cluster.choose_peer(self)
        if peer is not None:
            self.pull_from(peer)

    def pull_from(self, peer: str) -> None:
        """Start one anti-entropy exchange with ``peer`` (reusing an open link)."""
        for link in self.links.values():
            if link.peer == peer and link.session.state is not State.CLOSED:
                link.last_used_us = self.cluster.loop.now_us
                if link.session.state is State.OPEN and not link.session.pulling:
                    self._start_pull(link)
                elif link.session.state is State.HANDSHAKE:
                    link.want_pull = True
                return
        link = self._open(peer)
        link.want_pull = True
        self._trim_links()

    def push_local_writes(self, *, priority: bool = False) -> None:
        """New local writes: push them on every open link (pull first where needed).

        As the trio shell does, the push carries only this replica's own writes
        (``local_summary``): pushes are not relayed; anti-entropy spreads them further.
        """
        summary = None
        for link in list(self.links.values()):
            session = link.session
            if session.state is State.OPEN:
                if summary is None:
                    summary = self.replica.sync_summary()
                pushed = session.request_push(self.now, priority=priority,
                                              local_summary=summary)
                if not pushed and not session.pulling:
                    self._start_pull(link)
                self._flush(link)

    # ------------------------------------------------------------------ links

    def _open(self, peer: str) -> Link:
        conn = self.cluster.transport.connect(self.node_id, peer)
        link = self._link(conn, peer, initiator=True)
        self.cluster.metrics.links_opened += 1
        self._flush(link)
        return link

    def _accept(self, conn: Connection) -> None:
        if not self.up:
            conn.abort()
            return
        link = self._link(conn, conn.remote, initiator=False)
        self._flush(link)

    def _link(self, conn: Connection, peer: str, *, initiator: bool) -> Link:
        session = Session(
            replica_id=self.node_id,
            fingerprint=FINGERPRINT,
            now=self.now,
            config=self.cluster.session_config,
            expected_peer_id=peer,
        )
        link = Link(conn, session, peer, initiator, last_used_us=self.cluster.loop.now_us)
        self.links[conn.conn] = link
        conn.on_data = lambda data: self._on_data(link, data)
        conn.on_close = lambda reason: self._on_close(link, reason)
        return link

    def _trim_links(self) -> None:
        """Keep at most ``max_links``: close the least recently used idle ones."""
        excess = len(self.links) - self.max_links
        if excess <= 0:
            return
        idle = sorted(
            (link for link in self.links.values() if link.session.idle and not link.want_pull),
            key=lambda link: (link.last_used_us, link.conn.conn),
        )
        for link in idle[:excess]:
            link.session.close()
            self._flush(link)

    def _on_data(self, link: Link, data: bytes) -> None:
        if not self.up:
            return
        try:
            link.session.receive_data(data, self.now)
        except ProtocolError as exc:
            self.cluster.metrics.count("protocol_errors", getattr(exc, "reason", "local"))
        self._flush(link)

    def _on_close(self, link: Link, reason: str) -> None:
        if not self.up:
            return
        link.session.receive_data(b"", self.now)
        self._flush(link)
        self._drop(link)

    def _drop(self, link: Link) -> None:
        if link.timer is not None:
            link.timer.cancel()
            link.timer = None
        self.links.pop(link.conn.conn, None)

    def _start_pull(self, link: Link, *, reply: bool = False) -> None:
        summary = self.replica.sync_summary()
        self.cluster.metrics.summary(self.node_id, len(summary))
        link.session.start_sync(summary, self.now, reply=reply)
        link.want_pull = False
        link.last_used_us = self.cluster.loop.now_us

    def _flush(self, link: Link) -> None:
        """Do what the session asks until it has nothing more, then send its bytes."""
        session = link.session
        while True:
            event = session.next_event()
            if event is None:
                break
            self._handle(link, event)
        data = session.data_to_send()
        if data:
            link.conn.send(data)
        if session.state is State.CLOSED:
            if link.conn.open:
                link.conn.close()
            self._drop(link)
            return
        self._schedule(link)
        if self.draining and self._drained(link):
            self.draining = False
            self.cluster.loop.call_later(0, self.cluster.drained(self))

    def _drained(self, link: Link) -> bool:
        """The peer of ``link`` holds every event this node originated (leave is safe)."""
        session = link.session
        if not session.idle or session.peer_summary is None:
            return False
        theirs = watermarks(session.peer_summary)
        mine = watermarks(self.replica.sync_summary())
        if theirs is None or mine is None:
            return False
        return theirs.get(self.node_id, 0) >= mine.get(self.node_id, 0)

    def _schedule(self, link: Link) -> None:
        deadline = link.session.next_deadline()
        if deadline == link.deadline and link.timer is not None:
            return
        if link.timer is not None:
            link.timer.cancel()
            link.timer = None
        link.deadline = deadline
        if deadline is not None:
            # first microsecond at or after the deadline (never now: time must move)
            at = math.ceil(deadline * US_PER_S)
            if at / US_PER_S < deadline:
                at += 1
            at = max(at, self.cluster.loop.now_us + 1)
            link.timer = self.cluster.loop.call_at(at, lambda: self._timeout(link))

    def _timeout(self, link: Link) -> None:
        link.timer = None
        link.deadline = None
        if not self.up or link.conn.conn not in self.links:
            return
        link.session.handle_timeout(self.now)
        self._flush(link)

    # ------------------------------------------------------------------ events

    def _handle(self, link: Link, event: ev.Event) -> None:
        session = link.session
        metrics = self.cluster.metrics
        match event:
            case ev.HandshakeComplete():
                if link.want_pull and not session.pulling:
                    self._start_pull(link)
            case ev.NeedSummary():
                if session.state is State.OPEN and not session.pulling:
                    self._start_pull(link, reply=True)
            case ev.NeedChanges():
                try:
                    data = self.replica.sync_changes(
                        event.summary,
                        max_bytes=event.max_bytes,
                        peer=self.cluster.scope_of(link.peer),
                    )
                except MemmeshError as exc:
                    metrics.count("serve_errors", type(exc).__name__)
                    if event.first and event.purpose == "serve":
                        session.refuse(event.request, "protocol")
                    else:
                        session.close("protocol")
                    return
                metrics.changes(self.node_id, len(data), push=event.purpose == "push")
                session.changes_ready(event.request, data, self.now)
            case ev.ApplyChanges():
                try:
                    result = self.replica.sync_apply(event.data)
                except MemmeshError as exc:
                    metrics.count("apply_errors", type(exc).__name__)
                    session.apply_failed(event.n, self.now)
                    return
                self.cluster.on_applied(self, result)
                session.applied(event.n, self.now)
            case ev.SyncCompleted():
                metrics.syncs_completed += 1
                if event.more and session.state is State.OPEN and not session.pulling:
                    self._start_pull(link)
            case ev.SyncRejected():
                metrics.count("syncs_rejected", event.reason)
            case ev.PeerRejected():
                metrics.count("links_rejected", event.reason)
            case ev.ConnectionClosed():
                if event.error:
                    metrics.count("links_failed", event.reason)

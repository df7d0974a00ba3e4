"""One simulated agent process: a storage ``Replica`` plus the node's ``SyncPolicy``.

This is the simulator's stand-in for the trio shell of ``memmesh.gossip`` and, like it,
owns no protocol or policy logic: every decision (when to round, which peer, what each
session event does to the replica, sync slots, one link per peer, caps, the clock
fence) is made by the very ``memmesh.gossip.protocol.SyncPolicy`` the trio ``Node``
runs. The node moves bytes between the policy and its simulated connections, fires
timers at the deadlines the sessions ask for, and performs the policy's storage
requests inline with ``memmesh.gossip.protocol.perform`` (measuring them on
the way). The replica is a real LMDB ``Replica`` opened with the node's skewed
simulated clock.

Peer selection is the policy's (Demers et al. 1987 anti-entropy): every round the node
pulls from a member chosen uniformly at random among those it knows (the membership
oracle), dialling it when there is no link, and the peer pulls back on the same link.
The policy keeps at most ``max_links`` links, replacing the least recently useful idle
one. After local writes the node reads its replica's change journal, as the trio
node's journal loop does, and hands each page to ``SyncPolicy.local_changes``: writes
in push mode are pushed at once on the open links, writes in pull mode (``sync="pull"``,
stored in the replica) wait for anti-entropy rounds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memmesh.gossip.protocol import (
    Apply,
    Changes,
    Notice,
    Outcome,
    PeerLink,
    StorageRequest,
    Summary,
    SyncPolicy,
    perform,
    watermarks,
)

from .clock import SkewedClock
from .engine import US_PER_S, Timer
from .transport import Connection

if TYPE_CHECKING:
    from memmesh.storage import Replica

    from .cluster import Cluster

FINGERPRINT = b"memmesh-simulation"


@dataclass(eq=False, slots=True)
class _Wire:
    """The simulated connection of one link, and its session timer."""

    conn: Connection
    timer: Timer | None = None
    deadline: float | None = None


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
    max_links: int = 8
    #: wraps the replica at every start (a byzantine member's ForgingReplica), or None
    wrap: Callable[[Replica], Replica] | None = None
    _replica: Replica | None = None
    policy: SyncPolicy | None = None
    up: bool = False
    wires: dict[PeerLink, _Wire] = field(default_factory=dict)
    round_timer: Timer | None = None
    conflicted: set[str] = field(default_factory=set)
    draining: bool = False
    incarnation: int = 0
    syncs_counted: int = 0  # of this policy's completed pulls, already in the metrics
    journal_seq: int = 0  # the change journal read through (local_writes)
    _digest: str | None = None  # state_digest as of the last commit (None: unknown)

    @property
    def replica(self) -> Replica | None:
        """The open replica (None while down); marks it most recently used, so the
        cluster's ``OpenReplicas`` keeps its files open (see simulations/openfiles.py)."""
        replica = self._replica
        if replica is not None:
            self.cluster.open_replicas.touch(self.node_id, replica)
        return replica

    def state_digest(self) -> str:
        """The replica's ``state_digest``, remembered until its next commit (a digest
        changes only with a commit), so round snapshots do not reopen parked replicas."""
        if self._digest is None:
            self._digest = str(self.replica.state_digest())
        return self._digest

    def _committed(self) -> None:
        self._digest = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the replica (creating or reopening it) and start gossiping."""
        from memmesh.storage import Replica

        replica = Replica.open(
            self.path, replica_id=self.node_id, durable=False, clock=self.clock,
            id_factory=self.new_id, incarnation_factory=self.new_incarnation,
        )
        replica._env.after_commit.append(self._committed)
        self._digest = None
        self._replica = replica if self.wrap is None else self.wrap(replica)
        cluster = self.cluster
        self.policy = SyncPolicy(
            self.node_id, fingerprint=FINGERPRINT, rng=self.rng, now=self.now,
            max_drift_ms=self.replica.max_drift_ms,
            config=cluster.policy_config(self.max_links),
            session_config=cluster.session_config, scope_of=cluster.scope_of,
            report=self._notice,
        )
        self.syncs_counted = 0
        self.journal_seq = self.replica.journal_seq()
        self.up = True
        self.incarnation += 1
        cluster.transport.listen(self.node_id, self._accept)
        self._schedule_round()

    def crash(self) -> None:
        """Stop at once: connections vanish, sessions are lost, the replica survives."""
        if not self.up:
            return
        self._halt()
        self.cluster.transport.unlisten(self.node_id)
        self.wires.clear()
        self.policy = None
        self.cluster.open_replicas.forget(self.node_id)
        self._replica.close()
        self._replica = None
        self._digest = None

    def stop(self) -> None:
        """Leave gracefully: say goodbye on every link, then close the replica."""
        if not self.up:
            return
        policy = self._policy
        for link in list(self.wires):
            policy.close_link(link, self.now)
        self._settle()
        self.crash()

    def _halt(self) -> None:
        self.up = False
        self.draining = False
        if self.round_timer is not None:
            self.round_timer.cancel()
            self.round_timer = None
        for wire in self.wires.values():
            if wire.timer is not None:
                wire.timer.cancel()

    @property
    def now(self) -> float:
        """The session clock: simulated seconds (sessions only compare differences)."""
        return self.cluster.loop.now_us / US_PER_S

    @property
    def _policy(self) -> SyncPolicy:
        assert self.policy is not None, "the node is down"
        return self.policy

    # ------------------------------------------------------------------ rounds

    def _schedule_round(self) -> None:
        at = math.ceil(self._policy.next_round * US_PER_S)
        self.round_timer = self.cluster.loop.call_at(
            max(at, self.cluster.loop.now_us + 1), self._round)

    def _round(self) -> None:
        if not self.up:
            return
        cluster = self.cluster
        cluster.on_round(self)
        if not self.up:
            return
        dial = self._policy.round(self.now, self.clock(), candidates=cluster.members)
        self._schedule_round()
        if dial is not None:
            self._dial(dial)
        self._settle()

    def pull_from(self, peer: str) -> None:
        """Start one anti-entropy exchange with ``peer`` (reusing an open link)."""
        if self._policy.pull_from(peer, self.now):
            self._dial(peer)
        self._settle()

    def local_writes(self) -> None:
        """After local writes: read the change journal and let the policy push what is
        in push mode on every open link (pulling where the peer's summary is unknown);
        pushes carry only this replica's own writes."""
        policy = self._policy
        while True:
            batch = self.replica.changes_since(self.journal_seq)
            self.journal_seq = batch.seq
            policy.local_changes(batch.changes, reset=batch.reset)
            if not batch.changes:
                break
        self._settle()

    # ------------------------------------------------------------------ links

    def _dial(self, peer: str) -> None:
        conn = self.cluster.transport.connect(self.node_id, peer)
        link = self._policy.open_link(self.now, self.clock(), outbound=True,
                                      expected_peer_id=peer, want_pull=True)
        self.cluster.metrics.links_opened += 1
        self._bind(conn, link)

    def _accept(self, conn: Connection) -> None:
        if not self.up:
            conn.abort()
            return
        link = self._policy.open_link(self.now, self.clock(), outbound=False,
                                      expected_peer_id=conn.remote)
        self._bind(conn, link)

    def _bind(self, conn: Connection, link: PeerLink) -> None:
        self.wires[link] = _Wire(conn)
        conn.on_data = lambda data: self._on_data(link, data)
        conn.on_close = lambda reason: self._on_close(link)
        self._settle()

    def _on_data(self, link: PeerLink, data: bytes) -> None:
        if not self.up:
            return
        self._policy.receive_data(link, data, self.now, self.clock())
        self._settle()

    def _on_close(self, link: PeerLink) -> None:
        if not self.up:
            return
        self._policy.receive_data(link, b"", self.now, self.clock())
        self._settle()
        self._drop(link)

    def _drop(self, link: PeerLink) -> None:
        wire = self.wires.pop(link, None)
        if wire is not None and wire.timer is not None:
            wire.timer.cancel()
        if self.policy is not None:
            self.policy.forget(link)

    def _settle(self) -> None:
        """Perform what the policy asks of the replica, then flush the links it touched."""
        policy = self.policy
        if policy is None:
            return
        while (req := policy.next_request()) is not None:
            outcome = perform(self.replica, req)
            self._measure(req, outcome)
            policy.complete(req, outcome, self.now)
        syncs = policy.counters["syncs"]
        self.cluster.metrics.syncs_completed += syncs - self.syncs_counted
        self.syncs_counted = syncs
        for link in policy.touched():
            self._flush(link)

    def _measure(self, req: StorageRequest, outcome: Outcome) -> None:
        metrics = self.cluster.metrics
        if not outcome.ok:
            metrics.count("storage_errors", outcome.error or "?")
            return
        match req:
            case Summary(link=PeerLink()):
                metrics.summary(self.node_id, len(outcome.data))  # one that goes on a SYN
            case Changes(purpose=purpose):
                metrics.changes(self.node_id, len(outcome.data), push=purpose == "push")
            case Apply(link=link):
                self.cluster.on_applied(self, outcome.result, link.peer_id)

    def _notice(self, notice: Notice) -> None:
        self.cluster.metrics.count(notice.what, notice.reason)

    def _flush(self, link: PeerLink) -> None:
        """Send what the session has for the wire; close the wire of a closed link."""
        wire = self.wires.get(link)
        if wire is None:
            return
        data = link.session.data_to_send()
        if data:
            wire.conn.send(data)
        if link.closed:
            if wire.conn.open:
                wire.conn.close()
            self._drop(link)
            return
        self._schedule(link, wire)
        if self.draining and self._drained(link):
            self.draining = False
            self.cluster.loop.call_later(0, self.cluster.drained(self))

    def _drained(self, link: PeerLink) -> bool:
        """The peer of ``link`` holds every event this node originated (leave is safe).

        A read of the replica's own summary outside the policy: this check belongs to
        the simulation's graceful leave, not to syncing."""
        session = link.session
        if not link.open or not session.idle or session.peer_summary is None:
            return False
        theirs = watermarks(session.peer_summary)
        mine = watermarks(self.replica.sync_summary())
        if theirs is None or mine is None:
            return False
        return theirs.get(self.node_id, 0) >= mine.get(self.node_id, 0)

    def _schedule(self, link: PeerLink, wire: _Wire) -> None:
        deadline = link.session.next_deadline()
        if deadline == wire.deadline and wire.timer is not None:
            return
        if wire.timer is not None:
            wire.timer.cancel()
            wire.timer = None
        wire.deadline = deadline
        if deadline is not None:
            # first microsecond at or after the deadline (never now: time must move)
            at = math.ceil(deadline * US_PER_S)
            if at / US_PER_S < deadline:
                at += 1
            at = max(at, self.cluster.loop.now_us + 1)
            wire.timer = self.cluster.loop.call_at(at, lambda: self._timeout(link))

    def _timeout(self, link: PeerLink) -> None:
        wire = self.wires.get(link)
        if not self.up or wire is None:
            return
        wire.timer = None
        wire.deadline = None
        self._policy.handle_timeout(link, self.now)
        self._settle()
        self._flush(link)

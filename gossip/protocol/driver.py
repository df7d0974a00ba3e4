"""Drive sync policies between in-memory replicas on virtual time, with injected faults.

The protocol's test driver (as ``trio.testing`` is trio's): each replica gets the
:class:`~memmesh.gossip.protocol.SyncPolicy` the trio node runs, links carry whole
frames, storage requests are performed inline, time is a number the loop advances and
every random choice comes from the ``random.Random`` given: a run is a pure function of
its inputs. Faults drop, repeat or delay whole frames (what a transport does when it
reconnects and retransmits); closed links reopen after ``reconnect_after`` seconds, the
replica named first in :meth:`MemoryNetwork.connect` dialling. Example::

    net = MemoryNetwork(rng=random.Random(1), fingerprint=b"fp")
    net.connect(replica_a, replica_b)
    net.run_until(lambda: replica_a.state_digest() == replica_b.state_digest(), limit=60)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._config import SessionConfig
from ._frames import HEADER
from ._peerlink import PeerLink
from ._policy import Notice, PolicyConfig, SyncPolicy
from ._replica import SyncReplica
from ._requests import perform

__all__ = ["Faults", "MemoryNetwork"]


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-frame probabilities of loss, duplication and reordering."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


def _split_frames(data: bytes) -> list[bytes]:
    """Cut a session's output into whole frames (it only ever emits whole frames)."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        (length,) = HEADER.unpack_from(data, i)
        end = i + HEADER.size + length
        out.append(data[i:end])
        i = end
    return out


@dataclass(slots=True)
class _Node:
    replica: SyncReplica
    policy: SyncPolicy


@dataclass(slots=True)
class _End:
    node: _Node
    link: PeerLink
    inbox: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class _Link:
    a: SyncReplica
    b: SyncReplica
    faults: Faults
    ends: tuple[_End, _End] | None = None
    down_until: float = 0.0


class MemoryNetwork:
    """A set of links between in-memory replicas, stepped on virtual time."""

    def __init__(self, *, rng: random.Random, fingerprint: bytes = b"memmesh-test",
                 config: SessionConfig | None = None, policy: PolicyConfig | None = None,
                 interval: float = 1.0, reconnect_after: float = 1.0, step: float = 0.01,
                 tap: Callable[[bytes], None] | None = None) -> None:
        self.rng = rng
        self.fingerprint = fingerprint
        self.config = config if config is not None else SessionConfig(
            rto=0.5, keepalive=2.0, idle_timeout=10.0, handshake_timeout=3.0)
        self.policy_config = policy if policy is not None else PolicyConfig(interval=interval)
        self.reconnect_after = reconnect_after
        self.step = step
        self.tap = tap
        self.now = 0.0
        self.links: list[_Link] = []
        self.nodes: dict[str, _Node] = {}
        self.scopes: dict[tuple[str, str], object] = {}
        #: what every policy reported (errors, refusals, drops, fences), in order
        self.notices: list[tuple[str, Notice]] = []

    def policy(self, replica: SyncReplica) -> SyncPolicy:
        """The sync policy of ``replica`` (created on first use)."""
        return self._node(replica).policy

    def connect(self, a: SyncReplica, b: SyncReplica, faults: Faults | None = None) -> None:
        """Keep a link between ``a`` and ``b`` (re-opened whenever it closes)."""
        self._node(a)
        self._node(b)
        self.links.append(_Link(a, b, faults if faults is not None else Faults()))

    def set_scope(self, serving: SyncReplica, peer: SyncReplica, scope: object) -> None:
        """What ``serving`` lets ``peer`` see (passed as ``sync_changes(peer=...)``)."""
        self.scopes[(serving.replica_id, peer.replica_id)] = scope

    def push(self, writer: SyncReplica, *, priority: bool = False) -> None:
        """Tell ``writer``'s policy that it has new local writes."""
        node = self._node(writer)
        node.policy.local_writes(priority=priority)
        self._settle(node)

    @property
    def syncs(self) -> int:
        """Pulls completed, all replicas together."""
        return sum(n.policy.counters["syncs"] for n in self.nodes.values())

    # ------------------------------------------------------------------ loop

    def run_until(self, done: Callable[[], bool], *, limit: float) -> bool:
        """Step until ``done()`` or ``limit`` virtual seconds pass; True if done."""
        end_time = self.now + limit
        while self.now < end_time:
            self.tick()
            if done():
                return True
        return False

    def tick(self) -> None:
        self.now += self.step
        for link in self.links:
            if link.ends is None and self.now >= link.down_until:
                self._open(link)
        for node in self.nodes.values():
            if self.now >= node.policy.next_round:
                node.policy.round(self.now, node.replica.clock())
        for link in self.links:
            if link.ends is None:
                continue
            ends = link.ends
            for j in (0, 1):
                self._transmit(link, ends[j], ends[1 - j])
            for end in ends:
                self._deliver(end)
                deadline = end.link.session.next_deadline()
                if deadline is not None and self.now >= deadline:
                    end.node.policy.handle_timeout(end.link, self.now)
        for node in self.nodes.values():
            self._settle(node)
        for link in self.links:
            if link.ends is not None and any(e.link.closed for e in link.ends):
                for e in link.ends:
                    e.node.policy.close_link(e.link, self.now)
                    e.node.policy.forget(e.link)
                link.ends = None
                link.down_until = self.now + self.reconnect_after

    # ------------------------------------------------------------------ internals

    def _node(self, replica: SyncReplica) -> _Node:
        node = self.nodes.get(replica.replica_id)
        if node is None:
            rid = replica.replica_id

            def report(notice: Notice) -> None:
                self.notices.append((rid, notice))

            policy = SyncPolicy(
                rid, fingerprint=self.fingerprint, rng=random.Random(self.rng.random()),
                now=self.now, max_drift_ms=replica.max_drift_ms,
                config=self.policy_config, session_config=self.config,
                scope_of=lambda peer: self.scopes.get((rid, peer)), report=report)
            node = self.nodes[rid] = _Node(replica, policy)
        return node

    def _open(self, link: _Link) -> None:
        na, nb = self.nodes[link.a.replica_id], self.nodes[link.b.replica_id]
        ea = na.policy.open_link(self.now, link.a.clock(), outbound=True,
                                 expected_peer_id=link.b.replica_id)
        eb = nb.policy.open_link(self.now, link.b.clock(), outbound=False,
                                 expected_peer_id=link.a.replica_id)
        link.ends = (_End(na, ea), _End(nb, eb))

    def _transmit(self, link: _Link, src: _End, dst: _End) -> None:
        frames = _split_frames(src.link.session.data_to_send())
        f = link.faults
        for frame in frames:
            if self.tap is not None:
                self.tap(frame)
            if self.rng.random() < f.loss:
                continue
            dst.inbox.append(frame)
            if self.rng.random() < f.duplicate:
                dst.inbox.append(frame)
        if f.reorder and len(dst.inbox) > 1 and self.rng.random() < f.reorder:
            i = self.rng.randrange(len(dst.inbox) - 1)
            dst.inbox[i], dst.inbox[i + 1] = dst.inbox[i + 1], dst.inbox[i]

    def _deliver(self, end: _End) -> None:
        inbox, end.inbox = end.inbox, []
        for frame in inbox:
            end.node.policy.receive_data(end.link, frame, self.now, end.node.replica.clock())
            if end.link.closed:
                return

    def _settle(self, node: _Node) -> None:
        """Perform the policy's storage requests inline until none is left."""
        policy = node.policy
        while (req := policy.next_request()) is not None:
            policy.complete(req, perform(node.replica, req), self.now)
        policy.touched()  # every link is flushed on every tick anyway

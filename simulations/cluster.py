"""A simulated fleet: the event loop, the network, the nodes, faults and the workload.

``Cluster`` wires one ``EventLoop`` to a ``Network`` and ``Transport`` and a set of
``SimNode``s, each with its own LMDB replica directory under ``workdir``. Scenarios use
it as a small vocabulary: ``add_node``/``join``, ``crash``/``restart``, ``leave``,
``partition``/``heal``, ``add``/``update``/``read`` (the workload, which records every
acknowledged write in the ``WriteLog``), ``run_for`` and ``run_until_converged``.

Membership is an oracle, as mDNS on a LAN is: a node knows every member that joined and
has not left; crashed members stay known (dialing them fails, as it would).
Convergence means: every member is up, and all honest members with the same ACL scope
hold equal ``state_digest``s. Members named in ``byzantine`` are left out of
convergence and of the invariants (they lie on purpose); memories in ``quarantined``
(a member's writes stamped far in the future, which its peers refuse until real time
reaches the stamps) are left out of the digests compared, and those writes are expected
on their writer only. ``backup``/``restore`` copy a member's replica directory away and
put it back (a restore from an old backup).
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memmesh.gossip.protocol import PolicyConfig, SessionConfig
from memmesh.merge import Conflict, Resolution, resolve_conflicts
from memmesh.storage import _digest as stored_digest
from memmesh.storage._keycodec import decode

from .clock import SkewedClock
from .engine import US_PER_MS, US_PER_S, EventLoop
from .ids import incarnations, memory_ids
from .members import Members
from .metrics import Metrics, RoundStats
from .network import Network
from .node import SimNode
from .openfiles import OpenReplicas, default_limit
from .options import SimOptions
from .progress import Progress
from .rng import stream
from .transport import Transport
from .writelog import MemoryInfo, Write, WriteLog

#: Session tunables per transport mode. Over the reliable stream the protocol's own
#: retransmission is off (TCP does it); over bare frames it is on, with an RTO a little
#: above the worst round trip the default latency gives.
SESSION_CONFIGS = {
    "tcp": SessionConfig(retransmit=False, rto=5.0, keepalive=5.0, idle_timeout=30.0,
                         handshake_timeout=10.0),
    "frames": SessionConfig(retransmit=True, rto=0.5, max_retries=6, keepalive=2.0,
                            idle_timeout=10.0, handshake_timeout=3.0),
}


@dataclass(frozen=True, slots=True)
class Convergence:
    converged: bool
    rounds: int | None  # whole rounds after the reference time, None if not converged
    time_ms: float | None


def scope_key(scope: Any) -> str:
    """A stable name for a node's ACL scope (nodes with equal keys must converge)."""
    if scope is None:
        return "*"
    apps = "*" if scope.apps is None else ",".join(sorted(str(a) for a in scope.apps))
    users = "*" if scope.users is None else ",".join(sorted(str(u) for u in scope.users))
    return f"apps={apps};users={users}"


class Cluster:
    def __init__(
        self,
        options: SimOptions,
        workdir: Path,
        *,
        transport: str = "tcp",
        max_links: int = 8,
        resolve: bool = False,
        progress: Progress | None = None,
        open_replicas: int | None = None,
    ) -> None:
        self.options = options
        #: replicas whose LMDB files stay open (None: as many as the fd limit allows)
        self.open_replicas = OpenReplicas(
            default_limit() if open_replicas is None else open_replicas)
        self.workdir = workdir
        self.seed = options.seed
        self.loop = EventLoop()
        self.interval_us = options.interval_ms * US_PER_MS
        self.metrics = Metrics(self.interval_us, clock=lambda: self.loop.now_us)
        self.network = Network(
            self.loop,
            options.network_config(),
            options.seed,
            deliver=self._deliver,
            on_bytes=self.metrics.wire_bytes,
        )
        self.transport = Transport(
            self.loop, self.network, on_app_bytes=self.metrics.app_bytes, mode=transport
        )
        self.transport_mode = transport
        self.session_config = SESSION_CONFIGS[transport]
        self.max_links = max_links
        self.resolve = resolve
        self.resolve_deadline_ms = options.resolve_deadline_ms
        self.nodes: dict[str, SimNode] = {}
        self.members = Members()
        self.writelog = WriteLog()
        self.workload_rng = stream(options.seed, "workload")
        self.fault_rng = stream(options.seed, "faults")
        self.progress = progress
        self.progress_total_us = 0
        self.arrivals: dict[str, dict[str, int]] = {}  # tracked memory -> node -> time
        self.byzantine: set[str] = set()  # members left out of convergence and invariants
        self.quarantined: dict[str, set[Any]] = {}  # memory -> dots held by the writer only
        self.relayed: Counter[str] = Counter()  # sender -> others' memories it delivered
        self.refused_from: dict[str, Counter[str]] = {}  # sender -> its states refused
        self._snapshot_timer = self.loop.call_at(self.interval_us - 1, self._snapshot)

    # ------------------------------------------------------------------ nodes

    def node_name(self, index: int) -> str:
        return f"n{index:04d}"

    def add_node(self, node_id: str, *, scope: Any = None, start: bool = True,
                 wrap: Callable[[Any], Any] | None = None) -> SimNode:
        """Create a member (its replica directory, clock skew and random stream);
        ``wrap`` wraps its replica at every start (a byzantine member's forgeries)."""
        skew = 0
        if self.options.skew_ms:
            rng = stream(self.seed, "skew", node_id)
            skew = round(rng.uniform(-self.options.skew_ms, self.options.skew_ms))
        node = SimNode(
            cluster=self,
            node_id=node_id,
            path=self.workdir / node_id,
            clock=SkewedClock(self.loop, skew),
            rng=stream(self.seed, "node", node_id),
            new_id=memory_ids(self.seed, node_id),
            new_incarnation=incarnations(self.seed, node_id),
            scope=scope,
            max_links=self.max_links,
            wrap=wrap,
        )
        self.nodes[node_id] = node
        self.members.append(node_id)
        if start:
            node.start()
        return node

    def add_nodes(self, n: int, *, start: bool = True) -> list[str]:
        """``n`` members named by :meth:`node_name`; their names."""
        names = [self.node_name(i) for i in range(n)]
        for name in names:
            self.add_node(name, start=start)
        return names

    def honest(self) -> list[str]:
        """The members that are not byzantine."""
        return [m for m in self.members if m not in self.byzantine]

    def up_nodes(self) -> Iterator[SimNode]:
        for node_id in self.members:
            node = self.nodes[node_id]
            if node.up:
                yield node

    def scope_of(self, node_id: str) -> Any:
        node = self.nodes.get(node_id)
        return None if node is None else node.scope

    def policy_config(self, max_links: int) -> PolicyConfig:
        """The sync policy of every node: the trio node's defaults, on the run's round
        interval and with at most ``max_links`` links."""
        return PolicyConfig(interval=self.interval_us / US_PER_S, max_links=max_links)

    def choose_peer(self, node: SimNode) -> str | None:
        """A member other than ``node``, uniformly at random from ``node``'s stream."""
        members = self.members
        if len(members) < 2:
            return None
        while True:
            peer = members[node.rng.randrange(len(members))]
            if peer != node.node_id:
                return peer

    # ------------------------------------------------------------------ faults

    def crash(self, node_id: str) -> None:
        self.nodes[node_id].crash()
        self.metrics.count("faults", "crash")

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if not node.up:
            node.start()
            self.metrics.count("faults", "restart")

    def backup(self, node_id: str, name: str) -> Path:
        """A consistent copy of ``node_id``'s replica directory, taken while it runs
        (LMDB's hot copy, as a backup tool would take it)."""
        dst = self.workdir / "backups" / name
        dst.mkdir(parents=True)
        env = self.nodes[node_id].replica._env
        with env.read():
            pass  # reopens a parked environment (simulations/openfiles.py)
        env._env.copy(str(dst))
        self.metrics.count("faults", "backup")
        return dst

    def restore(self, node_id: str, backup: Path) -> None:
        """Put ``backup`` in place of the (crashed) member's replica directory."""
        node = self.nodes[node_id]
        assert not node.up, "restore a member while it is down"
        shutil.rmtree(node.path)
        shutil.copytree(backup, node.path)
        self.metrics.count("faults", "restore")

    def join(self, node_id: str, *, scope: Any = None) -> SimNode:
        self.metrics.count("faults", "join")
        return self.add_node(node_id, scope=scope)

    def leave(self, node_id: str) -> None:
        """Graceful leave: drain this node's own writes to a peer, then go (see node)."""
        node = self.nodes[node_id]
        if not node.up or node.draining:
            return
        node.draining = True
        peer = self.choose_peer(node)
        if peer is None:
            self._finish_leave(node)
        else:
            node.pull_from(peer)

    def drained(self, node: SimNode) -> Callable[[], None]:
        return lambda: self._finish_leave(node)

    def _finish_leave(self, node: SimNode) -> None:
        if not node.up:
            return
        node.stop()
        self.members.remove(node.node_id)
        self.metrics.count("faults", "leave")

    def partition(self, groups: list[list[str]]) -> None:
        self.network.partition(groups)
        self.metrics.count("faults", "partition")

    def heal(self) -> None:
        self.network.heal()
        self.metrics.count("faults", "heal")

    # ------------------------------------------------------------------ workload

    def add(self, node_id: str, text: str, *, klass: str = "default", policy: str = "mv",
            tier: str = "shared", priority: bool = False, sync: str | None = None,
            **scope: str | None) -> str:
        """``Replica.add`` on ``node_id``; the write is acknowledged when it returns.

        ``sync``: "push" (at once on the node's open links) or "pull" (it waits for
        anti-entropy), stored with the write as the real node reads it; None: push for
        priority, else the replica remembers none and the policy default (push) applies.
        """
        node = self.nodes[node_id]
        memory_id: str = node.replica.add(
            text, policy=policy, tier=tier, priority=priority, actor=node_id, sync=sync,
            **scope
        )
        self.writelog.created(MemoryInfo(
            memory_id, node_id, scope.get("app_id"), scope.get("user_id"), tier, policy, klass
        ))
        self._acknowledge(node, memory_id, "ADD")
        node.local_writes()
        return memory_id

    def update(self, node_id: str, memory_id: str, text: str, *,
               sync: str | None = None) -> bool:
        """``Replica.update`` on ``node_id`` (``sync`` as for :meth:`add`; None keeps the
        mode this node remembers for the memory); False (and counted) when the node does
        not hold the memory yet, as an agent cannot edit what it has not seen."""
        node = self.nodes[node_id]
        if node.replica.get(memory_id) is None:
            self.metrics.count("workload", "update_skipped_unseen")
            return False
        node.replica.update(memory_id, text, actor=node_id, sync=sync)
        self._acknowledge(node, memory_id, "UPDATE")
        node.local_writes()
        return True

    def write_any(self, node_id: str, memories: list[str], text: str, rng: random.Random,
                  **scope: str | None) -> str:
        """The usual agent write: half of the time an update of a random memory of
        ``memories`` (when ``node_id`` holds it), else a new memory, appended to
        ``memories``; returns the memory written."""
        if memories and rng.random() < 0.5:
            memory_id = memories[rng.randrange(len(memories))]
            if self.update(node_id, memory_id, text):
                return memory_id
        memory_id = self.add(node_id, text, **scope)
        memories.append(memory_id)
        return memory_id

    def read(self, node_id: str, memory_id: str) -> int:
        """Read on ``node_id``; records and returns the read's staleness in microseconds."""
        node = self.nodes[node_id]
        record = node.replica.get(memory_id)
        info = self.writelog.memories[memory_id]
        stale = self.writelog.staleness_us(memory_id, record, self.loop.now_us)
        self.metrics.staleness(info.klass, stale / US_PER_MS)
        return stale

    def _acknowledge(self, node: SimNode, memory_id: str, op: str) -> None:
        record = node.replica.get(memory_id)
        assert record is not None
        # the write just made is the version minted under this replica object's origin
        # (another lineage of the same member, a restored copy's, may stand beside it)
        mine = [v for v in record.versions if v.dot.replica == node.replica.origin]
        self._log_write(node, memory_id, max(mine, key=lambda v: v.timestamp), op)

    def _log_write(self, node: SimNode, memory_id: str, version: Any, op: str) -> None:
        info = self.writelog.memories[memory_id]
        self.writelog.acknowledged(Write(
            memory_id, node.node_id, version.dot, version.timestamp, self.loop.now_us,
            info.klass, op,
        ))
        if memory_id in self.arrivals:
            self.arrivals[memory_id].setdefault(node.node_id, self.loop.now_us)

    def track(self, memory_id: str) -> None:
        """Record when each node first holds ``memory_id`` (for spread curves)."""
        arrivals = self.arrivals.setdefault(memory_id, {})
        for node in self.up_nodes():
            if node.replica.get(memory_id) is not None:
                arrivals.setdefault(node.node_id, self.loop.now_us)

    # ------------------------------------------------------------------ callbacks

    def _deliver(self, src: str, dst: str, packet: object) -> None:
        self.transport.deliver(src, dst, packet)

    def on_applied(self, node: SimNode, result: Any, sender: str | None = None) -> None:
        now = self.loop.now_us
        for refusal in result.refused:
            self.metrics.count("refusals", refusal.reason)
            if sender is not None:
                self.refused_from.setdefault(sender, Counter())[refusal.reason] += 1
        if sender is not None:
            memories = self.writelog.memories
            self.relayed[sender] += sum(1 for m in result.changed
                                        if m in memories and memories[m].creator != sender)
        for memory_id in result.changed:
            arrivals = self.arrivals.get(memory_id)
            if arrivals is not None:
                arrivals.setdefault(node.node_id, now)
        if result.conflicts:
            self.metrics.conflict_events += len(result.conflicts)
            self.metrics.conflicts.update(result.conflicts)
            node.conflicted.update(result.conflicts)

    def on_round(self, node: SimNode) -> None:
        """Per-round local work of a node: resolve the conflicts it is arbiter for."""
        if self.resolve and node.conflicted:
            self._resolve_conflicts(node)

    def _resolve_conflicts(self, node: SimNode) -> None:
        """What ``Node(resolver=...)`` does each ``resolver_interval``:
        ``memmesh.merge.resolve_conflicts`` (the arbiter election plus the RESOLVE write).

        The simulated resolver picks the newest version (hybrid timestamp, then dot),
        like the last-writer-wins resolver; a real fleet plugs in ``memmesh.semantic``
        resolvers or an LLM. Its calls are counted. A node whose writes are fenced
        (its clock runs ahead) resolves nothing until the fence lifts, as the trio
        node's resolver loop, which carries on after a failed pass.
        """
        if node.replica.write_fence is not None:
            self.metrics.count("resolve", "fenced")
            return
        outcomes = resolve_conflicts(
            node.replica, self._resolver, deadline_ms=self.resolve_deadline_ms,
            now_ms=node.clock(), actor=node.node_id,
        )
        wrote = False
        for outcome in outcomes:
            if outcome.version is not None:
                self._log_write(node, outcome.memory_id, outcome.version, "RESOLVE")
                wrote = True
        for memory_id in sorted(node.conflicted):
            record = node.replica.get(memory_id)
            if record is None or not record.conflicted:
                node.conflicted.discard(memory_id)
        if wrote:
            node.local_writes()

    def _resolver(self, conflict: Conflict) -> Resolution:
        self.metrics.resolver_calls += 1
        newest = max(conflict.versions, key=lambda v: (v.timestamp, v.dot))
        return Resolution.pick(newest)

    # ------------------------------------------------------------------ running

    def _snapshot(self) -> None:
        """End of a round: record every up member's digest and who agrees."""
        stats: RoundStats = self.metrics.round_at(self.loop.now_us)
        digests: dict[str, str] = {}
        by_class: dict[str, dict[str, int]] = {}
        for node in self.up_nodes():
            if node.node_id in self.byzantine:
                continue
            digest = self.digest(node)
            digests[node.node_id] = digest
            counts = by_class.setdefault(scope_key(node.scope), {})
            counts[digest] = counts.get(digest, 0) + 1
        stats.live_nodes = len(digests)
        stats.agreeing = sum(max(c.values()) for c in by_class.values())
        self.metrics.digests.append(digests)
        if self.progress is not None and self.progress_total_us:
            self.progress.update(
                self.progress.total * self.loop.now_us // self.progress_total_us
            )
        self._snapshot_timer = self.loop.call_later(self.interval_us, self._snapshot)

    def digest(self, node: SimNode) -> str:
        """``node``'s state digest, the quarantined memories left out."""
        if not self.quarantined:
            return node.state_digest()
        return digest_without(node.replica, self.quarantined)

    def converged_now(self) -> bool:
        """All members up, equal digests per scope class among the honest ones, no
        conflict left standing (the last only when this run resolves conflicts)."""
        by_class: dict[str, str] = {}
        for node_id in self.members:
            node = self.nodes[node_id]
            if not node.up:
                return False
            if node_id in self.byzantine:
                continue
            digest = self.digest(node)
            key = scope_key(node.scope)
            if by_class.setdefault(key, digest) != digest:
                return False
        if self.resolve:
            for node_id in self.honest():
                node = self.nodes[node_id]
                for memory_id in sorted(node.conflicted):
                    record = node.replica.get(memory_id)
                    if record is not None and record.conflicted:
                        return False
        return True

    def run_for(self, rounds: float) -> None:
        self.loop.run(self.loop.now_us + round(rounds * self.interval_us))

    def run_until_converged(self, since_us: int, max_rounds: int) -> Convergence:
        """Run round by round until converged (checked at every round boundary)."""
        interval = self.interval_us
        deadline = since_us + max_rounds * interval
        while True:
            if self.converged_now():
                elapsed = self.loop.now_us - since_us
                rounds = -(-elapsed // interval)
                return Convergence(True, rounds, elapsed / US_PER_MS)
            if self.loop.now_us >= deadline:
                return Convergence(False, None, None)
            next_boundary = (self.loop.now_us // interval + 1) * interval
            self.loop.run(min(next_boundary, deadline))

    def close(self) -> None:
        for node in self.nodes.values():
            if node.up:
                node.crash()


def digest_without(replica: Any, memories: Iterable[str]) -> str:
    """``replica.state_digest()`` as if ``memories`` were absent: the digest is a sum of
    one hash per key (``storage._digest``), so their terms are subtracted."""
    total = int(replica.state_digest(), 16)
    inner = getattr(replica, "inner", replica)
    with inner._env.read() as txn:
        for memory_id in memories:
            skey = stored_digest.state_key(memory_id)
            raw = txn.get("state", skey)
            if raw is not None and decode(raw, check_canonical=False).header.shareable:
                total -= stored_digest.item_hash(skey, raw)
    return (total % (1 << 256)).to_bytes(32, "big").hex()


def shuffled(rng: random.Random, items: list[str]) -> list[str]:
    out = list(items)
    rng.shuffle(out)
    return out

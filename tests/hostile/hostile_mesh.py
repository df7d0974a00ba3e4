"""A few members, honest and not, against either target of the hostile suite.

``Mesh(mode, root)`` builds the same small fleet two ways:

* ``"replicas"``: bare LMDB replicas exchanging through the storage sync calls only.
  A round is, for every link and both directions, a pull of up to 16 payloads and one
  step of digest repair (``sync_summary(digest=True)``, the listing, the ``want``):
  everything the storage layer offers a correct node;
* ``"nodes"``: every member is a real trio ``Node`` on loopback, TLS 1.3 with one
  cluster key, its sync policy running rounds and pushes; a link is a seed the first
  member dials.

Honest members give the byzantine ones a restricted scope (:data:`BYZ_SCOPE`, not
alice's memories); :meth:`Mesh.canary` writes the memory that must never reach them.
Every write the test makes through :meth:`Mesh.write`/:meth:`Mesh.update` is
acknowledged (recorded with its dot), and :meth:`Mesh.assert_promise` checks what issue
11 demands: honest members converge, hold every acknowledged write (standing or
superseded), an honest write made now reaches every honest member, and the canary
never left.  Waits are on conditions with generous bounds, never fixed sleeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from gossip_procs import KEY

from memmesh.crdt import DecodeError, Dot, unpackb
from memmesh.gossip import Node
from memmesh.simulations.forgery import Forger, ForgingReplica
from memmesh.simulations.invariants import holds
from memmesh.storage import PeerScope, Replica

MODES = ("replicas", "nodes")
#: What honest members let a byzantine member see: bob's memories and user-less ones.
BYZ_SCOPE = PeerScope(users=frozenset({None, "bob"}))
CANARY = "alice's canary: tangerine-42"
CHUNK = 256 * 1024
#: Seconds a nodes-mode wait allows (a generous bound: a condition usually holds in
#: well under a second on loopback).
PATIENCE = 60.0
INTERVAL = 0.2


@dataclass(eq=False)
class Member:
    name: str
    path: Path
    byzantine: bool
    clock: Callable[[], int] | None
    forger: Forger | None
    node_options: dict[str, Any]
    replica: Any = None
    node: Node | None = None
    paused: bool = False
    stopping: trio.Event | None = None
    stopped: trio.Event | None = None
    #: replicas mode: refusals of what this member received, by reason
    refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def inner(self) -> Replica:
        """The LMDB replica itself (under a byzantine member's forging wrapper)."""
        return getattr(self.replica, "inner", self.replica)

    def open(self) -> None:
        replica = Replica.open(self.path, replica_id=self.name, clock=self.clock)
        self.replica = replica if self.forger is None else ForgingReplica(replica, self.forger)


class Mesh:
    """See the module docstring."""

    def __init__(self, mode: str, root: Path, *, patience: float = PATIENCE) -> None:
        assert mode in MODES
        self.mode = mode
        self.patience = patience
        self.root = root
        self.members: dict[str, Member] = {}
        self.links: list[tuple[Member, Member]] = []
        self.acked: dict[str, list[tuple[Member, Dot]]] = {}
        self.canaries: list[str] = []

    async def __aenter__(self) -> Mesh:
        self._stack = AsyncExitStack()
        await self._stack.__aenter__()
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        for m in self.members.values():
            await self.stop(m)
        return await self._stack.__aexit__(*exc)

    # ------------------------------------------------------------------ building

    def member(self, name: str, *, byzantine: bool = False, forger: Forger | None = None,
               clock: Callable[[], int] | None = None, path: Path | None = None,
               **node_options: Any) -> Member:
        """A member (its replica opened; in nodes mode started by :meth:`start`)."""
        m = Member(name, path or self.root / name, byzantine or forger is not None, clock,
                   forger, node_options)
        m.open()
        self.members[name] = m
        return m

    def honest(self) -> list[Member]:
        return [m for m in self.members.values() if not m.byzantine]

    def scope(self, server: Member, peer: Member) -> PeerScope | None:
        """What ``server`` lets ``peer`` see."""
        return BYZ_SCOPE if peer.byzantine and not server.byzantine else None

    async def link(self, a: Member, b: Member) -> None:
        """Keep ``a`` and ``b`` syncing (nodes: ``a`` dials ``b`` once both run)."""
        self.links.append((a, b))
        if a.node is not None and b.node is not None:
            a.node.add_seed("127.0.0.1", b.node.port)

    async def start(self, *members: Member) -> None:
        """Nodes mode: run ``members`` (all by default) as trio nodes."""
        if self.mode != "nodes":
            return
        for m in members or tuple(self.members.values()):
            if m.node is not None or m.paused or m.replica is None:
                continue
            acl = {p.name: self.scope(m, p) for p in self.members.values() if p is not m}
            # a pause is a cut-off, not a leave: the replica writes on (no retirement)
            opts: dict[str, Any] = dict(cluster_key=KEY, mdns=False, remember_peers=False,
                                        interval=INTERVAL, acl=acl, retire_on_close=False)
            opts.update(m.node_options)
            m.node = await self._nursery.start(self._run, m, Node(m.replica, **opts))
            for a, b in self.links:  # dial whoever is linked and running
                if m in (a, b):
                    other = b if a is m else a
                    if other.node is not None:
                        m.node.add_seed("127.0.0.1", other.node.port)

    @staticmethod
    async def _run(m: Member, node: Node,
                   task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        """One member's node, in a task of its own (members stop in any order)."""
        m.stopping, m.stopped = trio.Event(), trio.Event()
        try:
            async with node:
                task_status.started(node)
                await m.stopping.wait()
        finally:
            m.stopped.set()

    async def pause(self, m: Member) -> None:
        """Cut ``m`` off (its node stops; its replica stays open and may write)."""
        m.paused = True
        if m.node is not None:
            assert m.stopping is not None and m.stopped is not None
            m.stopping.set()
            await m.stopped.wait()
        m.node = None

    async def resume(self, m: Member) -> None:
        """Reconnect ``m``; returns once it is linked again (nodes: its links are up)."""
        m.paused = False
        await self.start(m)
        peers = {b.name if a is m else a.name for a, b in self.links if m in (a, b)}
        await self.until(lambda: m.node is None or set(m.node.peers) >= peers,
                         f"{m.name} to link up with {sorted(peers)}")

    async def stop(self, m: Member) -> None:
        """Stop ``m``'s node (if any) and close its replica."""
        await self.pause(m)
        m.paused = False
        if m.replica is not None:
            m.inner.close()
            m.replica = None

    async def reopen(self, m: Member, *, clock: Callable[[], int] | None) -> None:
        """Restart ``m`` from its directory with ``clock`` (e.g. after fixing it)."""
        await self.stop(m)
        m.clock = clock
        m.open()
        await self.start(m)

    def copy(self, m: Member, name: str) -> Member:
        """A restored backup of ``m``'s directory (a consistent hot copy) as member
        ``name`` with the same replica id: two lineages of one member."""
        dst = self.root / name
        dst.mkdir()
        m.inner._env._env.copy(str(dst))
        copy = Member(m.name, dst, m.byzantine, m.clock, m.forger, dict(m.node_options))
        copy.open()
        self.members[name] = copy
        return copy

    # ------------------------------------------------------------------ workload

    def write(self, m: Member, text: str, **scope: Any) -> str:
        """``add`` on ``m``, recorded as acknowledged."""
        memory_id: str = m.replica.add(text, **scope)
        self._ack(m, memory_id, text)
        return memory_id

    def update(self, m: Member, memory_id: str, text: str) -> None:
        m.replica.update(memory_id, text)
        self._ack(m, memory_id, text)

    def _ack(self, m: Member, memory_id: str, text: str) -> None:
        record = m.replica.get(memory_id)
        assert record is not None
        version = max((v for v in record.versions if v.text == text),
                      key=lambda v: v.timestamp)
        self.acked.setdefault(memory_id, []).append((m, version.dot))

    def canary(self, m: Member) -> str:
        """Alice's memory, which no byzantine member may ever receive."""
        memory_id = self.write(m, CANARY, user_id="alice")
        self.canaries.append(memory_id)
        return memory_id

    async def attack(self, victim: str = "victim", peer: str = "honest"
                     ) -> tuple[Forger, Member, Member, Member]:
        """The scene most cases start from, started: ``victim`` linked to an honest
        ``peer`` (which writes the canary) and to ``mallory``, whose payloads the
        returned :class:`Forger` rewrites.  Returns ``(forger, victim, peer, mallory)``."""
        forger = Forger()
        target, honest = self.member(victim), self.member(peer)
        mallory = self.member("mallory", forger=forger)
        await self.link(honest, target)
        await self.link(mallory, target)
        await self.start()
        self.canary(honest)
        return forger, target, honest, mallory

    # ------------------------------------------------------------------ running

    async def until(self, cond: Callable[[], bool], what: str, *, rounds: int = 60) -> None:
        """Run until ``cond()`` holds: sync rounds (replicas), or wait (nodes)."""
        timeout = self.patience
        if self.mode == "nodes":
            with trio.move_on_after(timeout):
                while not cond():
                    await trio.sleep(0.02)
                return
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        for _ in range(rounds):
            if cond():
                return
            self.round()
            await trio.lowlevel.checkpoint()
        if not cond():
            raise AssertionError(f"{what}: not after {rounds} rounds")

    async def pulls(self, dst: Member, src: Member, n: int = 2) -> None:
        """Wait until ``dst`` has completed ``n`` more pulls from ``src``."""
        if self.mode == "replicas":
            for _ in range(n):
                self.round()
            return
        assert dst.node is not None

        def done() -> int:
            assert dst.node is not None
            stats = dst.node.policy.peers.get(src.name)
            return 0 if stats is None else stats.syncs

        goal = done() + n
        await self.until(lambda: done() >= goal, f"{dst.name} to pull from {src.name}")

    def round(self) -> None:
        """Replicas mode: one round over every link (see module doc)."""
        for a, b in self.links:
            if a.replica is None or b.replica is None or a.paused or b.paused:
                continue
            for dst, src in ((a, b), (b, a)):
                self._pull(dst, src)
                self._repair(dst, src)

    def _apply(self, dst: Member, data: bytes) -> Any:
        try:
            result = dst.replica.sync_apply(data)
        except DecodeError as exc:
            dst.errors[type(exc).__name__] += 1
            return None
        dst.refused.update(r.reason for r in result.refused)
        return result

    def _pull(self, dst: Member, src: Member) -> None:
        scope = self.scope(src, dst)
        for _ in range(16):
            data = src.replica.sync_changes(dst.replica.sync_summary(), max_bytes=CHUNK,
                                            peer=scope)
            self._apply(dst, data)
            if not unpackb(data)["states"]:  # type: ignore[index]
                return

    def _repair(self, dst: Member, src: Member) -> None:
        scope = self.scope(src, dst)
        summary = dst.replica.sync_summary(digest=True, digest_scope=scope)
        result = self._apply(dst, src.replica.sync_changes(summary, max_bytes=CHUNK,
                                                           peer=scope))
        if result is not None and result.wanted:
            self._apply(dst, src.replica.sync_changes(
                dst.replica.sync_summary(want=result.wanted), max_bytes=CHUNK, peer=scope))

    # ------------------------------------------------------------------ views

    def refusals(self, m: Member) -> Counter[str]:
        """What ``m`` refused of what it received, by reason (nodes: its status)."""
        if m.node is not None:
            return Counter(m.node.status().refusals)
        return Counter(m.refused)

    def converged(self, members: Iterable[Member] | None = None) -> bool:
        digests = {m.replica.state_digest() for m in members or self.honest()}
        return len(digests) == 1

    def differences(self, members: list[Member]) -> dict[str, list[str]]:
        """Keys whose states are not the same on every one of ``members`` (diagnosis)."""
        states: dict[str, dict[str, bytes]] = {}
        for m in members:
            with m.inner._env.read() as txn:
                for skey, raw in txn.prefix("state", b""):
                    states.setdefault(skey[1:].decode(), {})[m.name] = raw
        return {key: sorted(held) for key, held in states.items()
                if len(held) != len(members) or len(set(held.values())) > 1}

    def holds_all(self, m: Member, writers: Iterable[Member] | None = None) -> bool:
        """``m`` holds every acknowledged write of ``writers`` (honest members)."""
        allowed = set(writers or self.honest())
        return all(holds(m.replica, memory_id, [d for w, d in acks if w in allowed])
                   for memory_id, acks in self.acked.items()
                   if any(w in allowed for w, _ in acks))

    async def assert_promise(self, honest: list[Member] | None = None) -> None:
        """Issue 11's promise over the ``honest`` members (default: every non-byzantine
        one): a write made now reaches all of them, they converge, each holds every
        acknowledged write of theirs, and no canary reached a byzantine member."""
        honest = honest or self.honest()
        memory_id = self.write(honest[0], f"written after the attack, {len(self.acked)}")
        await self.until(lambda: all(m.replica.get(memory_id) is not None for m in honest),
                         "an honest write made after the attack to reach every honest member")
        try:
            await self.until(lambda: self.converged(honest), "the honest members to converge")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; keys that differ: {self.differences(honest)}") \
                from None
        for m in honest:
            assert self.holds_all(m, honest), f"{m.name} lacks an acknowledged write"
        for m in self.members.values():
            if m.byzantine and m.replica is not None:
                for canary in self.canaries:
                    assert m.replica.get(canary) is None, f"the canary reached {m.name}"


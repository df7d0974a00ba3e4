"""The trio shell around the sync policy: listen, dial, discover, time, run storage.

``Node`` owns the sockets, timers, TLS and threads; every sync decision is made by its
:class:`~memmesh.gossip.protocol.policy.SyncPolicy` (the one the simulator and the
test driver run too: rounds, peer choice, what each protocol event does to the
replica, sync slots, one link per peer, caps, the clock fence).  The shell:

* runs each connection's bytes in a :class:`~memmesh.gossip.link.Link`;
* performs the policy's storage requests one at a time in a worker thread (LMDB never
  blocks the event loop), in the order the policy asked for them;
* wakes the policy for anti-entropy rounds at ``policy.next_round``;
* polls the replica's change journal every ``poll_interval`` and tells the policy of
  new local writes (also those of another process on the same LMDB path), which it
  pushes at once, priority writes first;
* enforces the resource decisions (:mod:`.admission` via the policy): connections
  still in the TLS handshake beyond ``max_handshakes`` are dropped oldest first, links
  the policy drops are closed, and ``RLIMIT_NOFILE`` is raised to its hard limit;
* reconnects with exponential back-off and jitter (:mod:`.dialer`): seeds forever,
  peers learnt from mDNS or from the persisted list until they fail repeatedly;
* runs an optional ``resolver`` for concurrent versions (see :class:`Node`);
* logs every refusal, drop, link error, fence, divergence found by digest repair and
  watermark proved false that the policy reports at WARNING, one line with the peer
  and the reason.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import trio

from memmesh.crdt.errors import MemmeshError
from memmesh.merge import resolve_conflicts

from .dialer import Dialer
from .link import Link
from .peers import KnownPeer, load_peers, save_peers
from .protocol.peerlink import PeerLink
from .protocol.policy import Notice, PolicyConfig, SyncPolicy
from .protocol.replica import NodeReplica
from .protocol.requests import perform
from .protocol.session import SessionConfig
from .protocol.summary import summary_lag
from .security import ClusterCredentials, SecurityError, cluster_fingerprint, peer_identity
from .status import NodeStatus, PeerStatus

__all__ = ["Node"]

log = logging.getLogger("memmesh.gossip")

Resolver = Callable[[Any], Any]
MiB = 1024 * 1024


class Node:
    """A gossiping replica: ``async with Node(replica, cluster_key=key) as node: ...``.

    Parameters (all but ``replica`` keyword-only):

    ``host``, ``port``
        Listen address (``port=0``: any free port, read back as ``node.port``).  mDNS
        advertises and browses on the interface of ``host``.
    ``cluster_key``
        Shared secret of the cluster (>= 16 bytes): links are TLS 1.3 with mutual
        certificate authentication under a CA derived from it (:mod:`.security`).
        Without it the node refuses to start unless ``insecure=True`` (plain TCP,
        for tests on one machine only).
    ``seeds``
        ``(host, port)`` pairs always dialled (work with ``mdns=False``).
    ``mdns``
        Advertise and browse ``_memmesh._tcp.local.`` (python-zeroconf, own thread).
    ``interval``
        Mean anti-entropy period in seconds (default 1.0; each round within +-10 %).
    ``resolver``
        ``callable(Conflict) -> Resolution | None`` (any resolver of
        :mod:`memmesh.semantic`, e.g. ``chain(NearDuplicate(), RolePriority([...]))``, or
        your own) run in a worker thread, every ``resolver_interval``, for each conflict
        this replica is the elected arbiter for, through
        :func:`memmesh.storage.resolve_conflicts`: the resolution is written as a RESOLVE
        that dominates the versions; None leaves the conflict for later.

    Options: ``insecure``, ``acl`` (``{peer replica id: scope}``, the scope handed to
    ``sync_changes(peer=...)``), ``acl_default`` (scope of peers not in ``acl``; None:
    all shareable data), ``max_syncs`` (4), ``max_links`` (64),
    ``max_links_per_address`` (32), ``max_handshakes`` (64), ``max_buffered`` (64 MiB:
    bytes held for all links, partial frames included), ``poll_interval`` (0.02 s),
    ``session_config``, ``connect_timeout`` (5 s), ``tls_timeout`` (5 s),
    ``send_timeout`` (30 s), ``backoff`` ((0.2, 10.0) s), ``mdns_interfaces``,
    ``remember_peers`` (True), ``resolver_interval`` (1 s), ``resolve_deadline_ms``
    (2000), ``storage_threads`` (True; False runs storage calls inline, for tests on
    ``trio.testing.MockClock``), ``rng`` (a ``random.Random``), ``repair_interval``
    (30 s: one digest repair check per node per interval, see
    :mod:`.protocol.repair`; ``math.inf`` leaves only the checks evidence asks for).
    """

    def __init__(
        self,
        replica: NodeReplica,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cluster_key: bytes | None = None,
        seeds: Sequence[tuple[str, int]] = (),
        mdns: bool = True,
        interval: float = 1.0,
        resolver: Resolver | None = None,
        insecure: bool = False,
        acl: Mapping[str, object] | None = None,
        acl_default: object = None,
        max_syncs: int = 4,
        max_links: int = 64,
        max_links_per_address: int = 32,
        max_handshakes: int = 64,
        max_buffered: int = 64 * MiB,
        poll_interval: float = 0.02,
        session_config: SessionConfig | None = None,
        connect_timeout: float = 5.0,
        tls_timeout: float = 5.0,
        send_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        mdns_interfaces: Sequence[str] | None = None,
        remember_peers: bool = True,
        resolver_interval: float = 1.0,
        resolve_deadline_ms: int = 2000,
        storage_threads: bool = True,
        rng: random.Random | None = None,
        repair_interval: float = 30.0,
    ) -> None:
        if cluster_key is None and not insecure:
            raise SecurityError(
                "a cluster_key is required (links are authenticated and encrypted); "
                "pass insecure=True only for tests on a trusted machine")
        if interval <= 0 or poll_interval <= 0:
            raise MemmeshError("interval and poll_interval must be > 0")
        self.policy_config = PolicyConfig(
            interval=interval, max_syncs=max_syncs, max_links=max_links,
            max_links_per_address=max_links_per_address, max_handshakes=max_handshakes,
            max_buffered=max_buffered, repair_interval=repair_interval)
        self.replica = replica
        self.replica_id: str = replica.replica_id
        self.host = host
        self.port = port
        self.seeds = tuple((str(h), int(p)) for h, p in seeds)
        self.mdns = mdns
        self.interval = interval
        self.resolver = resolver
        self.secure = cluster_key is not None
        self.fingerprint = cluster_fingerprint(cluster_key)
        self._cluster_key = cluster_key
        self.acl = dict(acl or {})
        self.acl_default = acl_default
        self.poll_interval = poll_interval
        self.session_config = session_config or SessionConfig(retransmit=False)
        self.connect_timeout = connect_timeout
        self.tls_timeout = tls_timeout
        self.send_timeout = send_timeout
        self.backoff = backoff
        self.mdns_interfaces = tuple(mdns_interfaces) if mdns_interfaces else None
        self.remember_peers = remember_peers
        self.resolver_interval = resolver_interval
        self.resolve_deadline_ms = resolve_deadline_ms
        self.storage_threads = storage_threads
        self.rng = rng or random.Random()
        self.resolved = 0
        self.policy = SyncPolicy(
            self.replica_id, fingerprint=self.fingerprint, rng=self.rng, now=0.0,
            max_drift_ms=replica.max_drift_ms, config=self.policy_config,
            session_config=self.session_config, scope_of=self._scope_of,
            report=_log_notice)
        self.dialer = Dialer(self)
        self._links: dict[PeerLink, Link] = {}
        self._known: dict[str, KnownPeer] = {}
        self._peers_seen: tuple[str, ...] = ()
        self._handshaking: dict[object, trio.CancelScope] = {}
        self._gate_drops = 0
        self._gate_logged = -math.inf
        self._storage_lock = trio.CapacityLimiter(1)
        self._work = trio.Event()  # set (and replaced) after every call into the policy
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None
        self._server_ctx: ssl.SSLContext | None = None
        self._client_ctx: ssl.SSLContext | None = None
        self._link_count_changed = trio.Event()
        self._started = False

    # ------------------------------------------------------------------ public

    @property
    def peers(self) -> tuple[str, ...]:
        """Replica ids of the peers connected right now (sorted)."""
        return self.policy.peer_ids()

    def status(self) -> NodeStatus:
        """A snapshot: peers with lag, counters and clock offset, bytes, the fence line
        (call from the trio thread)."""
        policy = self.policy
        mine = policy.last_summary
        now, wall, unix = trio.current_time(), self.wall_ms(), time.time()
        peers = []
        for rid, plink in sorted(policy.registered.items()):
            link = self._links.get(plink)
            theirs = plink.session.peer_summary
            lag = summary_lag(mine, theirs) if mine is not None and theirs is not None \
                else None
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
                clock_offset_ms=policy.clock.offset_ms(rid, now, wall),
                repairs=0 if stats is None else stats.repairs,
                repaired=0 if stats is None else stats.repaired,
                false_claims=0 if stats is None else stats.false_claims))
        every = list(self._links.values())
        refusals, errors = policy.peers.totals()
        counters = policy.counters
        return NodeStatus(
            replica_id=self.replica_id, host=self.host, port=self.port, secure=self.secure,
            peers=tuple(peers), bytes_in=sum(lk.bytes_in for lk in every),
            bytes_out=sum(lk.bytes_out for lk in every), syncs=counters["syncs"],
            pushes=counters["pushes"], rejected_busy=counters["busy"],
            write_fence=self.replica.write_fence,
            refusals=dict(sorted(refusals.items())), errors=dict(sorted(errors.items())),
            dropped={k.split(":", 1)[1]: n for k, n in sorted(counters.items())
                     if k.startswith("dropped:")},
            repairs=counters["repairs"], repaired=counters["repaired"],
            lowered=counters["lowered"])

    def add_seed(self, host: str, port: int) -> None:
        """Dial ``(host, port)`` from now on, like a seed."""
        self.dialer.ensure((host, port), persistent=True)

    async def sync_now(self) -> None:
        """Start a pull on every connected link and wait until their requests went out."""
        self.policy.pull_all(trio.current_time())
        self.after_policy()
        while any(lk.awaiting_summary for lk in self.policy.registered.values()):
            await self._work.wait()

    async def wait_for_peers(self, n: int, timeout: float = 30.0) -> None:
        """Wait until at least ``n`` peers are connected (raises ``trio.TooSlowError``)."""
        with trio.fail_after(timeout):
            while len(self.peers) < n:
                await self._link_count_changed.wait()

    async def __aenter__(self) -> Node:
        if self._started:
            raise MemmeshError("a Node can only be entered once")
        self._started = True
        self._stack = AsyncExitStack()
        await self._stack.__aenter__()
        try:
            self._nursery = await self._stack.enter_async_context(trio.open_nursery())
            await self._start(self._nursery)
        except BaseException as exc:
            await self._stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._nursery is not None and self._stack is not None
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self._save_known()
        self._nursery.cancel_scope.cancel()
        return await self._stack.__aexit__(*exc)

    async def handle_stream(self, stream: trio.abc.Stream, *, outbound: bool,
                            peer_id: str | None = None,
                            address: tuple[str, int] | None = None,
                            host: str | None = None) -> Link:
        """Run a link over an already connected (and, if secure, authenticated) stream.

        ``peer_id`` is the authenticated identity the peer's HELLO must match; ``host``
        the peer's address for the per-address cap (``address[0]`` when dialled).  Used
        by the TCP listener and dialers, and by tests with ``trio.testing`` streams.
        """
        plink = self.policy.open_link(
            trio.current_time(), self.wall_ms(), outbound=outbound, expected_peer_id=peer_id,
            address=host or (address[0] if address is not None else None))
        link = Link(self, stream, plink, address=address, send_timeout=self.send_timeout)
        self._links[plink] = link
        self.after_policy()
        try:
            await link.run()
        finally:
            self._links.pop(plink, None)
            self.after_policy()
        return link

    # ------------------------------------------------------------------ for links

    def wall_ms(self) -> int:
        """The replica's wall clock (the one HELLOs carry and the fence is judged by)."""
        return int(self.replica.clock())

    def link_of(self, plink: PeerLink) -> Link | None:
        return self._links.get(plink)

    def after_policy(self) -> None:
        """After any call into the policy: wake the storage worker and the links whose
        sessions have something to send, and notice peers that came or went."""
        self._work.set()
        self._work = trio.Event()
        for plink in self.policy.touched():
            link = self._links.get(plink)
            if link is not None:
                link.wake()
        peers = self.policy.peer_ids()
        if peers != self._peers_seen:
            for rid in set(peers) - set(self._peers_seen):
                self._remember(rid)
            self._peers_seen = peers
            self._link_count_changed.set()
            self._link_count_changed = trio.Event()

    def spawn(self, fn: Callable[[], Any]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)

    async def storage(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a replica call off the event loop, one at a time."""
        call = functools.partial(fn, *args, **kwargs)
        if not self.storage_threads:
            return call()
        return await trio.to_thread.run_sync(call, limiter=self._storage_lock)

    # ------------------------------------------------------------------ start-up

    async def _start(self, nursery: trio.Nursery) -> None:
        _raise_fd_limit()
        self.policy.next_round = trio.current_time() + self.interval * self.rng.random()
        if self._cluster_key is not None:
            creds = await trio.to_thread.run_sync(
                ClusterCredentials.create, self._cluster_key, self.replica_id)
            self._server_ctx = creds.server_context()
            self._client_ctx = creds.client_context()
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, self._inbound, self.port, host=self.host))
        self.port = listeners[0].socket.getsockname()[1]
        self.policy.port = self.port
        nursery.start_soon(self._storage_loop)
        nursery.start_soon(self._round_loop)
        nursery.start_soon(self._journal_loop)
        if self.resolver is not None:
            nursery.start_soon(self._resolver_loop)
        for addr in self.seeds:
            self.dialer.ensure(addr, persistent=True)
        if self.remember_peers:
            for kp in await self.storage(load_peers, self.replica):
                self._known[kp.replica_id] = kp
                if kp.replica_id != self.replica_id:
                    self.dialer.ensure((kp.host, kp.port), persistent=False)
        if self.mdns:
            from .discovery import MdnsDiscovery

            self.discovery = MdnsDiscovery(self)
            await nursery.start(self.discovery.run)

    def _scope_of(self, peer_id: str) -> object:
        return self.acl.get(peer_id, self.acl_default)

    def _remember(self, rid: str) -> None:
        """A peer registered: remember where it listens (for restarts)."""
        plink = self.policy.link_to(rid)
        link = None if plink is None else self._links.get(plink)
        if link is None:
            return
        host_port = link.address
        peer = link.session.peer
        if host_port is None and peer is not None and peer.port:
            try:
                stream: Any = link.stream
                sock = getattr(stream, "transport_stream", stream).socket
                host_port = (sock.getpeername()[0], peer.port)
            except (AttributeError, OSError):
                host_port = None
        if link.address is not None:
            self.dialer.learnt(link.address, rid)
        if host_port is not None:
            self._known[rid] = KnownPeer(rid, host_port[0], host_port[1],
                                         int(time.time() * 1000))

    # ------------------------------------------------------------------ connections

    async def _inbound(self, stream: trio.SocketStream) -> None:
        try:
            host = _peer_host(stream)
            wrapped, peer_id = await self._handshake(stream, server=True)
            if wrapped is not None:
                await self.handle_stream(wrapped, outbound=False, peer_id=peer_id, host=host)
        except Exception as exc:  # one bad connection must never take the listener down
            log.warning("inbound connection failed: %s", type(exc).__name__)

    async def _handshake(self, stream: trio.SocketStream, *, server: bool
                         ) -> tuple[trio.abc.Stream | None, str | None]:
        """TLS under the handshake gate: beyond ``max_handshakes`` the oldest pending
        handshake is dropped, so silent connections cannot lock out a real peer."""
        if self._server_ctx is None or self._client_ctx is None:
            return stream, None
        key = object()
        gate = self.policy.handshakes
        with trio.CancelScope() as scope:
            self._handshaking[key] = scope
            victim = gate.admit(key)
            if victim is not None:
                self._handshaking.pop(victim).cancel()
                self._dropped_handshake()
            try:
                return await self._secure(stream, server=server)
            finally:
                gate.done(key)
                self._handshaking.pop(key, None)
        await trio.aclose_forcefully(stream)
        return None, None

    async def secure_client(self, stream: trio.SocketStream
                            ) -> tuple[trio.abc.Stream | None, str | None]:
        """The client side of TLS on a dialled connection (plain when insecure)."""
        if self._server_ctx is None or self._client_ctx is None:
            return stream, None
        return await self._secure(stream, server=False)

    def _dropped_handshake(self) -> None:
        """Count a connection dropped from the handshake gate; log at most one line a
        second (a flood of them must not become a flood of log lines)."""
        self.policy.counters["dropped:handshakes"] += 1
        self._gate_drops += 1
        now = trio.current_time()
        if now - self._gate_logged >= 1.0:
            log.warning("node: dropped (handshakes): %d connection(s) still in their TLS "
                        "handshake, oldest first, to admit newer ones (max_handshakes=%d)",
                        self._gate_drops, self.policy.config.max_handshakes)
            self._gate_drops = 0
            self._gate_logged = now

    async def _secure(self, stream: trio.SocketStream, *, server: bool
                      ) -> tuple[trio.abc.Stream | None, str | None]:
        """TLS handshake (bounded); returns the stream and the peer's certified id."""
        assert self._server_ctx is not None and self._client_ctx is not None
        ctx = self._server_ctx if server else self._client_ctx
        tls = trio.SSLStream(stream, ctx, server_side=server,
                             server_hostname=None if server else "memmesh")
        try:
            with trio.fail_after(self.tls_timeout):
                await tls.do_handshake()
            return tls, peer_identity(tls)
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError,
                SecurityError) as exc:
            log.info("TLS handshake failed (%s)", type(exc).__name__)
            await trio.aclose_forcefully(tls)
            return None, None

    def discovered(self, replica_id: str, host: str, port: int) -> None:
        """A peer announced itself (mDNS): dial it unless already linked."""
        if replica_id == self.replica_id:
            return
        self.dialer.learnt((host, port), replica_id, only_if_new=True)
        if self.policy.link_to(replica_id) is not None:
            return
        # the smaller id dials at once; the other waits a little for that dial first
        delay = 0.0 if self.replica_id < replica_id else 2.0
        self.dialer.ensure((host, port), persistent=False, delay=delay)

    # ------------------------------------------------------------------ loops

    async def _storage_loop(self) -> None:
        """Perform the policy's storage requests in order, in the storage thread."""
        policy = self.policy
        while True:
            req = policy.next_request()
            if req is None:
                await self._work.wait()
                continue
            outcome = await self.storage(perform, self.replica, req)
            policy.complete(req, outcome, trio.current_time())
            self.after_policy()

    async def _round_loop(self) -> None:
        while True:
            await trio.sleep_until(self.policy.next_round)
            self.policy.round(trio.current_time(), self.wall_ms())
            self.after_policy()

    async def _journal_loop(self) -> None:
        seq = await self.storage(self.replica.journal_seq)
        while True:
            await trio.sleep(self.poll_interval)
            try:
                cur = await self.storage(self.replica.journal_seq)
                if cur == seq:
                    continue
                local = priority = False
                while True:
                    batch = await self.storage(self.replica.changes_since, seq)
                    seq = batch.seq
                    if batch.reset:
                        local = True
                    for change in batch.changes:
                        is_local, is_prio = _flags(change)
                        local |= is_local
                        priority |= is_local and is_prio
                    if not batch.changes or seq >= cur:
                        break
            except MemmeshError as exc:
                log.warning("journal poll failed: %s", type(exc).__name__)
                continue
            if local and self.policy.registered:
                self.policy.local_writes(priority=priority)
                self.after_policy()

    async def _resolver_loop(self) -> None:
        """Every ``resolver_interval``, resolve the conflicts this replica is the elected
        arbiter for (:func:`memmesh.storage.resolve_conflicts`: one loop for the node and
        for direct callers).  It runs in its own worker thread, outside the storage
        limiter, so a slow resolver (an LLM) never holds up syncs."""
        assert self.resolver is not None
        while True:
            await trio.sleep(self.resolver_interval)
            try:
                outcomes = await trio.to_thread.run_sync(functools.partial(
                    resolve_conflicts, self.replica, self.resolver,
                    deadline_ms=self.resolve_deadline_ms))
                self.resolved += sum(1 for o in outcomes if o.version is not None)
            except Exception:  # a user's resolver must not stop the node
                log.exception("conflict resolution failed")

    async def _save_known(self) -> None:
        if self.remember_peers and self._known:
            try:
                await self.storage(save_peers, self.replica, list(self._known.values()))
            except (MemmeshError, AttributeError) as exc:
                log.warning("could not save known peers: %s", type(exc).__name__)


def _log_notice(notice: Notice) -> None:
    (log.warning if notice.level == "warning" else log.info)("%s", notice)


def _peer_host(stream: Any) -> str | None:
    try:
        host: str = stream.socket.getpeername()[0]
    except (AttributeError, OSError, IndexError):
        return None
    return host


def _raise_fd_limit() -> None:
    """Raise this process's open-file limit to its hard limit (connections are files:
    the default 1,024 lets a flood of connections make ``accept`` fail)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError) as exc:  # not permitted / not POSIX
        log.info("could not raise the open-file limit: %s", type(exc).__name__)


def _flags(change: Any) -> tuple[bool, bool]:
    """(local, priority) of a journal entry: an object with fields or a 4-tuple."""
    if hasattr(change, "local"):
        return bool(change.local), bool(getattr(change, "priority", False))
    return bool(change[2]), bool(change[3])


def seeds_from(spec: Iterable[str]) -> list[tuple[str, int]]:
    """Parse ``["host:port", ...]`` (for the CLI)."""
    out = []
    for item in spec:
        host, _, port = item.rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out

"""The trio shell around the sync policy: listen, dial, discover, time, run storage.

Every sync decision is made by the node's ``SyncPolicy``, the one the simulator and the
test driver run (h11's split: the protocol is sans-IO, the shell only moves bytes and
time). ``Node`` wires the parts that do I/O: the TCP listener, TLS (:mod:`._tls`), one
``Link`` per connection (:mod:`._link`), the dialer (:mod:`._dialer`), mDNS
(:mod:`._discovery`), a storage worker performing the policy's requests one at a time
off the event loop, the round timer, the change-journal poller (local writes, another
process's on the same LMDB path too), the optional conflict resolver, known peers
(:mod:`._peers`) and ``status()`` (:mod:`._status`).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import trio

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.merge import DEFAULT_IMPORTANCE_THRESHOLD, resolve_conflicts
from memmesh.trust import MemberIdentity, TrustStore

from ._dialer import Dialer
from ._link import Link, peer_address
from ._listen import check_port, choose_host, open_listener
from ._peers import PeerBook, format_address
from ._security import SecurityError, cluster_fingerprint
from ._status import NodeStatus, node_status
from ._tls import TlsLayer
from .protocol import (
    SYNC_MODES,
    AccessList,
    NodeReplica,
    Notice,
    PeerLink,
    PolicyConfig,
    SessionConfig,
    SyncPolicy,
    perform,
)

__all__ = ["Node", "ShellOptions"]

log = logging.getLogger("memmesh.gossip")

Resolver = Callable[[Any], Any]
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ShellOptions:
    """The shell's own tunables (the policy's are its :class:`PolicyConfig`)."""

    poll_interval: float = 0.02
    connect_timeout: float = 5.0
    tls_timeout: float = 5.0
    send_timeout: float = 30.0
    backoff: tuple[float, float] = (0.2, 10.0)
    mdns_interfaces: tuple[str, ...] | None = None
    remember_peers: bool = True
    resolver_interval: float = 1.0
    resolve_deadline_ms: int = 2000
    storage_threads: bool = True
    importance_threshold: float = DEFAULT_IMPORTANCE_THRESHOLD


class Node:
    """A gossiping replica: ``async with Node(replica, cluster_key=key) as node: ...``.

    Parameters (all but ``replica`` keyword-only):

    ``host``, ``port``
        Listen address (``port=0``: any free port, read back as ``node.port``).  With
        ``host=None`` (the default) the node listens on loopback while every seed is on
        this machine, and on every interface (``::``, IPv4 too) once a seed is off it
        (:mod:`.listen`; ``node.bind.why`` says which and why).  mDNS advertises and
        browses on the interfaces of ``host`` (every non-loopback one for a wildcard).
        A port outside 0..65535 raises ``InvalidArgumentError``; a port in use, a
        :class:`~.listen.ListenError` naming it.
    ``cluster_key``
        Shared secret of the cluster (>= 16 bytes): links are TLS 1.3 with mutual
        certificate authentication under a CA derived from it (:mod:`._security`).
        Without it (or an ``identity``) the node refuses to start unless
        ``insecure=True`` (plain TCP, for tests on one machine only).
    ``identity``
        A fleet on credentials instead of a cluster key (the two exclude each other): the
        member's :class:`memmesh.trust.MemberIdentity` (``MemberIdentity.load(path)`` of
        a file made by ``memmesh authority issue``). TLS trusts only its authority's CA
        and presents the member's certificate; each peer's HELLO must carry a credential
        of that authority, for the key of its TLS certificate and the replica id it
        claims, valid now and not revoked (``trust``: the :class:`TrustStore` to admit
        them with and check revocations in; default the replica's own, ``replica.trust``,
        so the revocations it holds apply to links too). What a peer receives follows
        its credential's read grants (intersected with ``acl``). The identity's replica
        id must be the replica's.
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
        :func:`memmesh.merge.resolve_conflicts`: the resolution is written as a RESOLVE
        that dominates the versions; None leaves the conflict for later.
    ``escalate``, ``importance_threshold``
        A second resolver (e.g. an ``LLMArbiter``) asked only when ``resolver`` has no
        opinion and the conflict's importance (None counts as 0) is at least
        ``importance_threshold`` (default ``DEFAULT_IMPORTANCE_THRESHOLD``, 0.5): cheap
        resolvers for every conflict, the expensive one for those that matter.

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
    docs/internals.md, section 3; ``math.inf`` leaves only the checks evidence asks for),
    ``sync_default`` ("push": how local writes that name no ``sync=`` mode and are not
    priority are delivered; "pull" leaves them to anti-entropy rounds),
    ``retire_on_close`` (True: a stop without an exception first calls :meth:`leave`, for
    at most ``leave_timeout``, 5 s).
    """

    def __init__(
        self,
        replica: NodeReplica,
        *,
        host: str | None = None,
        port: int = 0,
        cluster_key: bytes | None = None,
        identity: MemberIdentity | None = None,
        trust: TrustStore | None = None,
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
        escalate: Resolver | None = None,
        importance_threshold: float = DEFAULT_IMPORTANCE_THRESHOLD,
        sync_default: str = "push",
        retire_on_close: bool = True,
        leave_timeout: float = 5.0,
    ) -> None:
        if cluster_key is not None and identity is not None:
            raise SecurityError("pass a cluster_key or an identity (member credentials), "
                                "not both")
        if identity is not None and not isinstance(identity, MemberIdentity):
            raise SecurityError("identity must be a memmesh.trust.MemberIdentity")
        if identity is not None and identity.replica_id != replica.replica_id:
            raise SecurityError(f"the credential is {identity.replica_id!r}'s, but the replica "
                                f"is {replica.replica_id!r}")
        if cluster_key is None and identity is None and not insecure:
            raise SecurityError(
                "a cluster_key or an identity is required (links are authenticated and "
                "encrypted); pass insecure=True only for tests on a trusted machine")
        if interval <= 0 or poll_interval <= 0:
            raise MemmeshError("interval and poll_interval must be > 0")
        if type(importance_threshold) not in (int, float) or \
                not 0.0 <= importance_threshold <= 1.0:
            raise InvalidArgumentError("importance_threshold must be a number in [0, 1]")
        if escalate is not None and resolver is None:
            raise InvalidArgumentError("escalate needs a resolver (it is asked only after one)")
        if sync_default not in SYNC_MODES:
            raise InvalidArgumentError('sync_default must be "push" or "pull"')
        self.options = ShellOptions(
            poll_interval=poll_interval, connect_timeout=connect_timeout,
            tls_timeout=tls_timeout, send_timeout=send_timeout, backoff=backoff,
            mdns_interfaces=tuple(mdns_interfaces) if mdns_interfaces else None,
            remember_peers=remember_peers, resolver_interval=resolver_interval,
            resolve_deadline_ms=resolve_deadline_ms, storage_threads=storage_threads,
            importance_threshold=float(importance_threshold))
        self.replica = replica
        self.replica_id: str = replica.replica_id
        self.retire_on_close = retire_on_close
        self.leave_timeout = leave_timeout
        self.seeds = tuple((str(h), check_port(int(p))) for h, p in seeds)
        self.bind = choose_host(host, self.seeds)
        self.host = self.bind.host
        self.port = check_port(port)
        self.mdns = mdns
        self.resolver = resolver
        self.escalate = escalate
        self.resolved = 0
        self.identity = identity
        self.fingerprint = cluster_fingerprint(cluster_key) if identity is None \
            else identity.authority.fingerprint
        self.rng = rng or random.Random()
        self.policy = SyncPolicy(
            self.replica_id, fingerprint=self.fingerprint, rng=self.rng, now=0.0,
            max_drift_ms=replica.max_drift_ms,
            config=PolicyConfig(
                interval=interval, max_syncs=max_syncs, max_links=max_links,
                max_links_per_address=max_links_per_address, max_handshakes=max_handshakes,
                max_buffered=max_buffered, repair_interval=repair_interval,
                sync_default=sync_default),
            session_config=session_config or SessionConfig(retransmit=False),
            scope_of=AccessList(acl or {}, acl_default), report=_log_notice,
            identity=identity,
            trust=trust if trust is not None else getattr(replica, "trust", None))
        self.tls = TlsLayer(cluster_key, gate=self.policy.handshakes,
                            counters=self.policy.counters, timeout=tls_timeout,
                            identity=identity)
        self.dialer = Dialer(self)
        self.peer_book = PeerBook(self.replica_id)
        self._links: dict[PeerLink, Link] = {}
        self._closed_bytes = [0, 0]  # in, out of links that have closed
        self._listener: trio.SocketListener | None = None
        self._peers_seen: tuple[str, ...] = ()
        self._link_count_changed = trio.Event()
        self._storage_lock = trio.CapacityLimiter(1)
        self._work = trio.Event()  # set (and replaced) after every call into the policy
        self._performing = False  # the storage worker is inside a request
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None

    # ------------------------------------------------------------------ public

    @property
    def peers(self) -> tuple[str, ...]:
        """Replica ids of the peers connected right now (sorted)."""
        return self.policy.peer_ids()

    def status(self) -> NodeStatus:
        """A snapshot: peers with lag, counters and clock offset, bytes, the fence line
        (call from the trio thread)."""
        records = self.dialer.records
        seeds = [(records[a], self.dialer.peer_at(a)) for a in dict.fromkeys(self.seeds)
                 if a in records]
        return node_status(self.policy, self._links, host=self.host, port=self.port,
                           secure=self.tls.secure, write_fence=self.replica.write_fence,
                           now=trio.current_time(), wall_ms=self.wall_ms(), unix=time.time(),
                           seeds=seeds, closed_bytes=(self._closed_bytes[0],
                                                      self._closed_bytes[1]),
                           bind=self.bind.why,
                           revocations=int(self.replica.stats().get("revocations", 0)))

    def listening_line(self) -> str:
        """One line for logs and start-up messages: where the node listens and why,
        TLS or not, its seeds and mDNS."""
        seeds = ", ".join(format_address(h, p) for h, p in self.seeds) or "none"
        return (f"node {self.replica_id} listening on {format_address(self.host, self.port)} "
                f"({self.bind.why}); {self._security_words()}"
                f"; seeds: {seeds}; mDNS {'on' if self.mdns else 'off'}")

    def _security_words(self) -> str:
        if self.identity is not None:
            return (f"TLS 1.3 on credentials of {self.identity.authority.name!r} "
                    f"(fingerprint {self.fingerprint.hex()})")
        return "TLS 1.3" if self.tls.secure else "INSECURE plain TCP"

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
        if self._stack is not None:
            raise MemmeshError("a Node can only be entered once")
        # before any nursery, so a port in use is a ListenError, not an ExceptionGroup
        self._listener, self.host, self.port = open_listener(self.host, self.port)
        self._stack = AsyncExitStack()
        await self._stack.__aenter__()
        try:
            self._nursery = await self._stack.enter_async_context(trio.open_nursery())
            await self._start(self._nursery)
        except BaseException as exc:
            self._listener.socket.close()
            await self._stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def leave(self) -> int:
        """The graceful leave (docs/internals.md, "Retired origins"): retire this
        replica object's origin at its counter (``Replica.retire_origin``) and hand the
        entry, with any of its writes a peer lacks, to every connected peer whose
        summary we hold (a priority push on each link), returning once every link is
        idle: delivered and acknowledged, or closed. Without it, a fleet of processes
        that come and go names every origin that ever wrote until ``retire_after``
        retires it. The final counter (0: nothing to retire: no write, or a replica
        that cannot retire)."""
        retire = getattr(self.replica, "retire_origin", None)
        if retire is None:
            return 0
        final = int(await self.storage(retire))
        if not final or not self.policy.registered:
            return final
        self.policy.local_writes(priority=True)
        self.after_policy()
        while self.policy.pending_requests or self._performing or not all(
                lk.session.idle or not lk.open for lk in self.policy.registered.values()):
            await self._work.wait()
        return final

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._nursery is not None and self._stack is not None
        if exc[0] is None and self.retire_on_close:  # a graceful stop: leave first
            with trio.CancelScope(shield=True), trio.move_on_after(self.leave_timeout):
                await self.leave()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self._save_known()
        self._nursery.cancel_scope.cancel()
        return await self._stack.__aexit__(*exc)

    async def handle_stream(self, stream: trio.abc.Stream, *, outbound: bool,
                            peer_id: str | None = None,
                            address: tuple[str, int] | None = None,
                            host: str | None = None, peer_key: bytes | None = None) -> Link:
        """Run a link over an already connected (and, if secure, authenticated) stream.

        ``peer_id`` is the authenticated identity the peer's HELLO must match; ``host``
        the peer's address for the per-address cap (``address[0]`` when dialled);
        ``peer_key`` the key of its TLS certificate (on credentials).  Used
        by the TCP listener and dialers, and by tests with ``trio.testing`` streams.
        """
        plink = self.policy.open_link(
            trio.current_time(), self.wall_ms(), outbound=outbound, expected_peer_id=peer_id,
            address=host or (address[0] if address is not None else None),
            expected_peer_key=peer_key)
        link = Link(self, stream, plink, address=address, send_timeout=self.options.send_timeout)
        self._links[plink] = link
        self.after_policy()
        try:
            await link.run()
        finally:
            self._links.pop(plink, None)
            self._closed_bytes[0] += link.bytes_in
            self._closed_bytes[1] += link.bytes_out
            self.after_policy()
        return link

    def discovered(self, replica_id: str, host: str, port: int) -> None:
        """A peer announced itself (mDNS): dial it when the policy says so."""
        if replica_id == self.replica_id:
            return
        self.dialer.learnt((host, port), replica_id, only_if_new=True)
        delay = self.policy.dial_delay(replica_id)
        if delay is not None:
            self.dialer.ensure((host, port), persistent=False, delay=delay)

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
                log.info("peer %s: connected (%s)", rid, self._describe_link(rid))
            for rid in set(self._peers_seen) - set(peers):
                log.info("peer %s: disconnected", rid)
            self._peers_seen = peers
            self._link_count_changed.set()
            self._link_count_changed = trio.Event()

    def spawn(self, fn: Callable[[], Any]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)

    async def storage(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a replica call off the event loop, one at a time."""
        call = functools.partial(fn, *args, **kwargs)
        if not self.options.storage_threads:
            return call()
        return await trio.to_thread.run_sync(call, limiter=self._storage_lock)

    # ------------------------------------------------------------------ start-up

    async def _start(self, nursery: trio.Nursery) -> None:
        _raise_fd_limit()
        self.policy.next_round = trio.current_time() + \
            self.policy.config.interval * self.rng.random()
        await self.tls.start(self.replica_id)
        assert self._listener is not None
        await nursery.start(trio.serve_listeners, self._inbound, [self._listener])
        self.policy.port = self.port
        nursery.start_soon(self._storage_loop)
        nursery.start_soon(self._round_loop)
        nursery.start_soon(self._journal_loop)
        if self.resolver is not None:
            nursery.start_soon(self._resolver_loop)
        for addr in self.seeds:
            self.dialer.ensure(addr, persistent=True)
        if self.options.remember_peers:
            for kp in await self.storage(self.peer_book.load, self.replica):
                self.dialer.ensure((kp.host, kp.port), persistent=False)
        log.info("%s", self.listening_line())
        if self.mdns:
            from ._discovery import MdnsDiscovery

            self.discovery = MdnsDiscovery(self)
            await nursery.start(self.discovery.run)

    def _describe_link(self, rid: str) -> str:
        plink = self.policy.link_to(rid)
        link = None if plink is None else self._links.get(plink)
        if link is None or plink is None:
            return "?"
        where = link.address or link.listen_address()
        return (f"{'dialled' if plink.outbound else 'inbound'}"
                + ("" if where is None else f", {format_address(*where)}"))

    def _remember(self, rid: str) -> None:
        """A peer registered: remember where it listens (for restarts)."""
        plink = self.policy.link_to(rid)
        link = None if plink is None else self._links.get(plink)
        if link is None:
            return
        if link.address is not None:
            self.dialer.linked(link.address, rid)
        where = link.listen_address()
        if where is not None:
            self.peer_book.remember(rid, where, int(time.time() * 1000))

    async def _save_known(self) -> None:
        if self.options.remember_peers:
            try:
                await self.storage(self.peer_book.save, self.replica)
            except (MemmeshError, AttributeError) as exc:
                log.warning("could not save known peers: %s", type(exc).__name__)

    # ------------------------------------------------------------------ loops

    async def _inbound(self, stream: trio.SocketStream) -> None:
        try:
            peer = peer_address(stream)
            wrapped, peer_id, peer_key = await self.tls.accept(stream, peer)
            if wrapped is not None:
                await self.handle_stream(wrapped, outbound=False, peer_id=peer_id,
                                         host=None if peer is None else peer[0],
                                         peer_key=peer_key)
        except Exception as exc:  # one bad connection must never take the listener down
            log.warning("inbound connection failed: %s", type(exc).__name__)

    async def _storage_loop(self) -> None:
        """Perform the policy's storage requests in order, in the storage thread."""
        policy = self.policy
        while True:
            req = policy.next_request()
            if req is None:
                await self._work.wait()
                continue
            self._performing = True
            try:
                outcome = await self.storage(perform, self.replica, req)
            finally:
                self._performing = False
            policy.complete(req, outcome, trio.current_time())
            self.after_policy()

    async def _round_loop(self) -> None:
        while True:
            await trio.sleep_until(self.policy.next_round)
            self.policy.round(trio.current_time(), self.wall_ms())
            self.after_policy()

    async def _journal_loop(self) -> None:
        """Poll the change journal; hand each page to the policy, which pushes the
        push-mode local writes (priority first) and leaves pull-mode ones to rounds."""
        seq = await self.storage(self.replica.journal_seq)
        while True:
            await trio.sleep(self.options.poll_interval)
            try:
                cur = await self.storage(self.replica.journal_seq)
                if cur == seq:
                    continue
                while True:
                    batch = await self.storage(self.replica.changes_since, seq)
                    seq = batch.seq
                    self.policy.local_changes(batch.changes, reset=batch.reset)
                    self.after_policy()
                    if not batch.changes or seq >= cur:
                        break
            except MemmeshError as exc:
                log.warning("journal poll failed: %s", type(exc).__name__)
                continue

    async def _resolver_loop(self) -> None:
        """Every ``resolver_interval``, resolve the conflicts this replica is the elected
        arbiter for (:func:`memmesh.merge.resolve_conflicts`: one loop for the node and
        for direct callers).  It runs in its own worker thread, outside the storage
        limiter, so a slow resolver (an LLM) never holds up syncs."""
        assert self.resolver is not None
        opts = self.options
        while True:
            await trio.sleep(opts.resolver_interval)
            try:
                outcomes = await trio.to_thread.run_sync(functools.partial(
                    resolve_conflicts, self.replica, self.resolver,
                    deadline_ms=opts.resolve_deadline_ms, escalate=self.escalate,
                    importance_threshold=opts.importance_threshold))
                self.resolved += sum(1 for o in outcomes if o.version is not None)
            except Exception:  # a user's resolver must not stop the node
                log.exception("conflict resolution failed")


def _log_notice(notice: Notice) -> None:
    (log.warning if notice.level == "warning" else log.info)("%s", notice)


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


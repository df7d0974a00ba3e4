"""The trio shell around the protocol core: listen, dial, discover, gossip, push.

``Node`` owns the sockets, timers, TLS and threads; every protocol decision is made by
:class:`~memmesh.gossip.protocol.Session`.  Each connection runs in a
:class:`~memmesh.gossip.link.Link`.  The node adds the policies that span links:

* anti-entropy: every ``interval`` (randomised to ``[0.5, 1.5] * interval``) a random
  connected peer is pulled from (and, by the protocol's reply, pushed to);
* push: the replica's change journal is polled every ``poll_interval``; new local
  writes (also those of another process on the same LMDB path) are pushed to every
  peer at once, priority writes first, and only this replica's own writes (no
  relaying: a peer gets third-party data from its source or from anti-entropy);
* no redundant pulls: while data from a peer is still being applied, anti-entropy
  rounds (up to four in a row) and the reverse half of a round are skipped;
* bounded work: at most ``max_syncs`` peers are served at a time (others get
  ``REJECT busy`` and retry on a later round), at most ``max_links`` connections;
* reconnects with exponential back-off and jitter; seeds are dialled forever, peers
  learnt from mDNS or from the persisted list until they fail repeatedly;
* one link per peer: when two nodes dial each other, the link initiated by the smaller
  replica id is kept (both ends pick the same one);
* an optional ``resolver`` for concurrent versions (see :class:`Node`).
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import trio

from memmesh.crdt.errors import MemmeshError
from memmesh.storage.arbitration import resolve_conflicts

from .link import Link
from .peers import KnownPeer, backoff_delay, load_peers, save_peers
from .protocol.session import Session, SessionConfig
from .protocol.summary import summary_lag
from .security import ClusterCredentials, SecurityError, cluster_fingerprint, peer_identity
from .status import NodeStatus, PeerStatus

__all__ = ["Node"]

log = logging.getLogger("memmesh.gossip")

Resolver = Callable[[Any], Any]
_FATAL_REJECTS = frozenset({"wrong-cluster", "version", "identity", "self"})


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
        Mean anti-entropy period in seconds (default 1.0).
    ``resolver``
        ``callable(Conflict) -> Resolution | None`` (any resolver of
        :mod:`memmesh.semantic`, e.g. ``chain(NearDuplicate(), RolePriority([...]))``, or
        your own) run in a worker thread, every ``resolver_interval``, for each conflict
        this replica is the elected arbiter for, through
        :func:`memmesh.storage.resolve_conflicts`: the resolution is written as a RESOLVE
        that dominates the versions; None leaves the conflict for later.

    Options: ``insecure``, ``acl`` (``{peer replica id: scope}``, the scope handed to
    ``sync_changes(peer=...)``), ``acl_default`` (scope of peers not in ``acl``; None:
    all shareable data), ``max_syncs`` (4), ``max_links`` (64), ``poll_interval``
    (0.02 s), ``session_config``, ``connect_timeout`` (5 s), ``tls_timeout`` (5 s),
    ``send_timeout`` (30 s), ``backoff`` ((0.2, 10.0) s), ``mdns_interfaces``,
    ``remember_peers`` (True), ``resolver_interval`` (1 s), ``resolve_deadline_ms``
    (2000), ``storage_threads`` (True; False runs storage calls inline, for tests on
    ``trio.testing.MockClock``), ``rng`` (a ``random.Random``).
    """

    def __init__(
        self,
        replica: Any,
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
    ) -> None:
        if cluster_key is None and not insecure:
            raise SecurityError(
                "a cluster_key is required (links are authenticated and encrypted); "
                "pass insecure=True only for tests on a trusted machine")
        if interval <= 0 or poll_interval <= 0 or max_syncs < 1 or max_links < 1:
            raise MemmeshError("interval, poll_interval, max_syncs, max_links must be > 0")
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
        self.max_syncs = max_syncs
        self.max_links = max_links
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
        self.stats = {"pushes": 0, "syncs": 0, "rejected_busy": 0, "resolved": 0}
        self._links: dict[str, Link] = {}
        self._all_links: set[Link] = set()
        self._dialers: dict[tuple[str, int], bool] = {}
        self._addr_rid: dict[tuple[str, int], str] = {}
        self._known: dict[str, KnownPeer] = {}
        self._slots = max_syncs
        self._storage_lock = trio.CapacityLimiter(1)
        self._last_summary: bytes | None = None
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
        return tuple(sorted(rid for rid, link in self._links.items() if link.open))

    def status(self) -> NodeStatus:
        """A snapshot: peers with lag, bytes in/out, last sync (call from the trio thread)."""
        mine = self._last_summary
        peers = []
        for rid in sorted(self._links):
            link = self._links[rid]
            theirs = link.session.peer_summary
            lag = summary_lag(mine, theirs) if mine is not None and theirs is not None \
                else None
            peers.append(PeerStatus(
                replica_id=rid, address=link.address,
                direction="out" if link.outbound else "in",
                connected_at=link.connected_at, last_sync=link.last_sync, lag=lag,
                bytes_in=link.bytes_in, bytes_out=link.bytes_out, syncs=link.syncs))
        every = list(self._all_links)
        return NodeStatus(
            replica_id=self.replica_id, host=self.host, port=self.port, secure=self.secure,
            peers=tuple(peers), bytes_in=sum(lk.bytes_in for lk in every),
            bytes_out=sum(lk.bytes_out for lk in every), syncs=self.stats["syncs"],
            pushes=self.stats["pushes"], rejected_busy=self.stats["rejected_busy"])

    def add_seed(self, host: str, port: int) -> None:
        """Dial ``(host, port)`` from now on, like a seed."""
        self._ensure_dialer((host, port), persistent=True)

    async def sync_now(self) -> None:
        """Start a pull on every connected link at once (e.g. after a batch of writes)."""
        for link in list(self._links.values()):
            await link.start_pull()

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
                            address: tuple[str, int] | None = None) -> Link:
        """Run a link over an already connected (and, if secure, authenticated) stream.

        ``peer_id`` is the authenticated identity the peer's HELLO must match.  Used by
        the TCP listener and dialers, and by tests with ``trio.testing`` streams.
        """
        session = Session(replica_id=self.replica_id, fingerprint=self.fingerprint,
                          now=trio.current_time(), config=self.session_config,
                          port=self.port, expected_peer_id=peer_id)
        link = Link(self, stream, session, outbound=outbound, address=address,
                    send_timeout=self.send_timeout)
        self._all_links.add(link)
        try:
            await link.run()
        finally:
            self._all_links.discard(link)
            self._unregister(link)
        return link

    # ------------------------------------------------------------------ start-up

    async def _start(self, nursery: trio.Nursery) -> None:
        if self._cluster_key is not None:
            creds = await trio.to_thread.run_sync(
                ClusterCredentials.create, self._cluster_key, self.replica_id)
            self._server_ctx = creds.server_context()
            self._client_ctx = creds.client_context()
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, self._inbound, self.port, host=self.host))
        self.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(self._anti_entropy_loop)
        nursery.start_soon(self._journal_loop)
        if self.resolver is not None:
            nursery.start_soon(self._resolver_loop)
        for addr in self.seeds:
            self._ensure_dialer(addr, persistent=True)
        if self.remember_peers:
            for kp in await self.storage(load_peers, self.replica):
                self._known[kp.replica_id] = kp
                if kp.replica_id != self.replica_id:
                    self._ensure_dialer((kp.host, kp.port), persistent=False)
        if self.mdns:
            from .discovery import MdnsDiscovery

            self.discovery = MdnsDiscovery(self)
            await nursery.start(self.discovery.run)

    # ------------------------------------------------------------------ helpers for links

    async def storage(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a replica call off the event loop, one at a time."""
        call = functools.partial(fn, *args, **kwargs)
        if not self.storage_threads:
            return call()
        return await trio.to_thread.run_sync(call, limiter=self._storage_lock)

    def spawn(self, fn: Callable[[], Awaitable[Any]]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)

    def note_summary(self, summary: bytes) -> None:
        self._last_summary = summary

    def acquire_sync_slot(self) -> bool:
        if self._slots <= 0:
            return False
        self._slots -= 1
        return True

    def release_sync_slot(self) -> None:
        self._slots = min(self.max_syncs, self._slots + 1)

    def changes_applied(self, result: Any) -> None:
        """Hook after each applied chunk (nothing to do: the journal loop notices)."""

    def sync_completed(self, link: Link, more: bool) -> None:
        self.stats["syncs"] += 1
        if more and link.more_streak < 16:
            link.more_streak += 1
            self.spawn(link.start_pull)
        else:
            link.more_streak = 0

    def link_open(self, link: Link) -> None:
        """Handshake done: keep one link per peer, remember the address, set the ACL."""
        rid = link.peer_id
        assert rid is not None
        existing = self._links.get(rid)
        if existing is not None and existing is not link and existing.open:
            new_init, old_init = self._initiator(link), self._initiator(existing)
            if new_init != old_init:
                # crossed dials: both ends keep the link dialled by the smaller id
                loser = link if new_init > old_init else existing
                loser.session.reject("duplicate")
                loser.wake()
                if loser is link:
                    return
            elif new_init == self.replica_id:
                link.session.reject("duplicate")  # we dialled twice: drop the newer
                link.wake()
                return
            else:
                return  # the peer dialled twice and drops one; ours takes over if needed
        if len(self._links) >= self.max_links and rid not in self._links:
            link.session.reject("busy")
            link.wake()
            return
        link.registered = True
        link.scope = self.acl.get(rid, self.acl_default)
        self._links[rid] = link
        if link.address is not None:
            self._addr_rid[link.address] = rid
        host_port = self._peer_address(link)
        if host_port is not None:
            self._known[rid] = KnownPeer(rid, host_port[0], host_port[1],
                                         int(time.time() * 1000))
        self._links_changed()
        self.spawn(link.start_pull)

    def _initiator(self, link: Link) -> str:
        return self.replica_id if link.outbound else (link.peer_id or "")

    def _peer_address(self, link: Link) -> tuple[str, int] | None:
        if link.address is not None:
            return link.address
        peer = link.session.peer
        if peer is None or not peer.port:
            return None
        try:
            stream: Any = link.stream
            sock = getattr(stream, "transport_stream", stream).socket
            return (sock.getpeername()[0], peer.port)
        except (AttributeError, OSError):
            return None

    def _unregister(self, link: Link) -> None:
        rid = link.peer_id
        if rid is not None and self._links.get(rid) is link:
            del self._links[rid]
            for other in self._all_links:  # an accepted twin may take over
                if other.peer_id == rid and not other.session.closed and other is not link:
                    other.registered = True
                    other.scope = self.acl.get(rid, self.acl_default)
                    self._links[rid] = other
                    break
            self._links_changed()

    def _links_changed(self) -> None:
        self._link_count_changed.set()
        self._link_count_changed = trio.Event()

    # ------------------------------------------------------------------ connections

    async def _inbound(self, stream: trio.SocketStream) -> None:
        try:
            if len(self._all_links) >= self.max_links * 2:
                await trio.aclose_forcefully(stream)
                return
            wrapped, peer_id = await self._secure(stream, server=True)
            if wrapped is None:
                return
            await self.handle_stream(wrapped, outbound=False, peer_id=peer_id)
        except Exception:  # one bad connection must never take the listener down
            log.exception("inbound connection failed")

    async def _secure(self, stream: trio.SocketStream, *, server: bool
                      ) -> tuple[trio.abc.Stream | None, str | None]:
        """TLS handshake (bounded); returns the stream and the peer's certified id."""
        if self._server_ctx is None or self._client_ctx is None:
            return stream, None
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

    def _ensure_dialer(self, addr: tuple[str, int], *, persistent: bool,
                       delay: float = 0.0) -> None:
        if addr in self._dialers or addr == (self.host, self.port):
            if persistent:
                self._dialers[addr] = True
            return
        self._dialers[addr] = persistent
        self.spawn(functools.partial(self._dial_loop, addr, delay))

    async def _dial_loop(self, addr: tuple[str, int], delay: float) -> None:
        failures = 0
        try:
            if delay:
                await trio.sleep(delay)
            while True:
                rid = self._addr_rid.get(addr)
                existing = self._links.get(rid) if rid else None
                if existing is not None and existing.open:
                    await existing.closed.wait()
                    await trio.sleep(backoff_delay(0, base=self.backoff[0],
                                                   cap=self.backoff[1], rng=self.rng))
                    continue
                link = await self._dial_once(addr)
                if link is not None and link.peer_id is not None:
                    self._addr_rid[addr] = link.peer_id
                if link is not None and link.registered:
                    failures = 0
                elif link is not None and link.rejected_reason == "duplicate":
                    failures = 0
                    continue
                else:
                    failures += 1
                fatal = link is not None and link.rejected_reason in _FATAL_REJECTS
                if not self._dialers.get(addr) and (fatal or failures >= 8):
                    return
                await trio.sleep(backoff_delay(
                    failures if not fatal else 30, base=self.backoff[0],
                    cap=self.backoff[1], rng=self.rng))
        finally:
            self._dialers.pop(addr, None)

    async def _dial_once(self, addr: tuple[str, int]) -> Link | None:
        try:
            with trio.fail_after(self.connect_timeout):
                sock = await trio.open_tcp_stream(*addr)
        except (OSError, trio.TooSlowError):
            return None
        wrapped, peer_id = await self._secure(sock, server=False)
        if wrapped is None:
            return None
        if peer_id is not None and peer_id in self._links and self._links[peer_id].open \
                and self._initiator(self._links[peer_id]) == self.replica_id:
            await trio.aclose_forcefully(wrapped)  # already linked, by us
            self._addr_rid[addr] = peer_id
            return None
        return await self.handle_stream(wrapped, outbound=True, peer_id=peer_id,
                                        address=addr)

    def discovered(self, replica_id: str, host: str, port: int) -> None:
        """A peer announced itself (mDNS): dial it unless already linked."""
        if replica_id == self.replica_id:
            return
        self._addr_rid.setdefault((host, port), replica_id)
        link = self._links.get(replica_id)
        if link is not None and link.open:
            return
        # the smaller id dials at once; the other waits a little for that dial first
        delay = 0.0 if self.replica_id < replica_id else 2.0
        self._ensure_dialer((host, port), persistent=False, delay=delay)

    # ------------------------------------------------------------------ loops

    async def _anti_entropy_loop(self) -> None:
        skipped = 0
        while True:
            await trio.sleep(self.interval * self.rng.uniform(0.5, 1.5))
            # while data is still arriving (pushes, other pulls), a pull now would mostly
            # fetch the same keys twice: wait, but never more than a few rounds
            if skipped < 4 and any(lk.session.receiving for lk in self._all_links):
                skipped += 1
                continue
            skipped = 0
            links = [lk for lk in self._links.values() if lk.open and not lk.session.pulling]
            if links:
                try:
                    await self.rng.choice(links).start_pull()
                except MemmeshError as exc:
                    log.warning("anti-entropy: storage error %s", type(exc).__name__)

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
            if local and self._links:
                try:
                    summary = await self.storage(self.replica.sync_summary)
                except MemmeshError as exc:
                    log.warning("summary failed: %s", type(exc).__name__)
                    continue
                self.note_summary(summary)
                for link in list(self._links.values()):
                    link.push(priority=priority, local_summary=summary)

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
                self.stats["resolved"] += sum(1 for o in outcomes if o.version is not None)
            except Exception:  # a user's resolver must not stop the node
                log.exception("conflict resolution failed")

    async def _save_known(self) -> None:
        if self.remember_peers and self._known:
            try:
                await self.storage(save_peers, self.replica, list(self._known.values()))
            except (MemmeshError, AttributeError) as exc:
                log.warning("could not save known peers: %s", type(exc).__name__)


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

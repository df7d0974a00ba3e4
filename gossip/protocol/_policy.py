"""The sync policy of a memmesh node, written once and sans-IO.

One :class:`SyncPolicy` per replica makes every decision around the link sessions, so
the trio ``Node``, the simulator's ``SimNode`` and ``driver.MemoryNetwork`` behave alike
and the simulator measures the code users run. Times are arguments (``now`` monotonic
seconds, ``wall_ms`` the replica's clock); randomness comes from the injected
``random.Random``. It decides anti-entropy rounds with a random peer (Demers et al.
1987), what each session event asks of the replica (:mod:`._requests`), links (one per
peer id, crossed dials, caps, scopes), the clock fence (:mod:`._clockwatch`), digest
repair (:mod:`._repair`) and per-peer counters (:mod:`._peerstats`). Every rule:
docs/internals.md, section 3; how to drive it: the package docstring.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from memmesh.storage.wire import PeerScope, normal, restrict
from memmesh.trust import MemberIdentity, TrustStore

from . import events as ev
from ._admission import HandshakeGate, expendable, hoarders
from ._bulk import BulkLease
from ._choice import Excluding
from ._clockwatch import ClockWatch
from ._config import SessionConfig
from ._errors import LocalProtocolError, RemoteProtocolError
from ._kin import KinChoice
from ._peerlink import PeerLink
from ._peerstats import PeerStats, PeerTable
from ._pushes import SYNC_MODES, PushDecision, push_decision
from ._repair import PeerRepair, PullRecord, RepairPlan
from ._replica import ApplyReport
from ._requests import Apply, Changes, Fence, Outcome, StorageRequest, Summary
from ._session import Session
from ._summary import summary_root

__all__ = ["Notice", "PolicyConfig", "SyncPolicy"]

_T = TypeVar("_T")

MiB: Final = 1024 * 1024

#: Reasons a peer gives when it closes a link to protect itself (one link per id, its
#: caps): logged at INFO and counted apart, never as that peer's errors.
_PEER_PROTECTS: Final = frozenset({"duplicate", "busy", "overload"})

#: Seconds the larger id of two members that discovered each other waits before it
#: dials, so the smaller id's dial (the link both keep) usually comes first.
_CROSSED_DIAL_WAIT: Final = 2.0


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Tunables of the sync policy (times in seconds of the caller's clock)."""

    interval: float = 1.0
    jitter: float = 0.1
    max_skipped_rounds: int = 4
    max_follow_ups: int = 16
    max_syncs: int = 4
    max_links: int = 64
    max_links_per_address: int = 32
    max_buffered: int = 64 * MiB
    max_handshakes: int = 64
    clock_ttl: float = 3600.0
    max_peers_tracked: int = 1024
    #: one scheduled digest repair check per node per this many seconds (see repair.py):
    #: memberlist's full push-pull period; a converged fleet's checks cost nothing (the
    #: roots agree), a scoped or busy one's about 2 KB each (inf: no scheduled checks)
    repair_interval: float = 30.0
    #: the first back-off of early repairs (on evidence), doubled up to repair_interval
    repair_min_gap: float = 2.0
    #: keys asked for per pull (the rest next time): their states fit one chunk
    repair_want: int = 256
    #: delivery of a local write that names no mode and is not priority: "push" (at
    #: once, on every link) or "pull" (left to anti-entropy rounds); see _pushes.py
    sync_default: str = "push"
    #: a restricted member's rounds pick among its kin (peers whose scope overlaps what
    #: it is served: _kin.py), except this share of them, picked among all peers
    kin_explore: float = 0.1
    #: a pull from a peer whose summary shows at least this many events we lack is a
    #: bulk transfer (about one 256 KiB chunk of small memories): one at a time, the
    #: others wait for it (see _bulk.py)
    bulk_lag: int = 1024
    #: a bulk pull that applied nothing for this long yields its turn to the next one
    bulk_patience: float = 10.0

    def __post_init__(self) -> None:
        if not self.interval > 0 or not 0 <= self.jitter < 1:
            raise LocalProtocolError("interval must be > 0 and jitter within [0, 1)")
        for name in ("max_syncs", "max_links", "max_links_per_address", "max_handshakes",
                     "max_peers_tracked", "max_buffered", "bulk_lag"):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"{name} must be at least 1")
        if self.max_skipped_rounds < 0 or self.max_follow_ups < 0 or \
                not self.clock_ttl > 0 or not self.bulk_patience > 0:
            raise LocalProtocolError("max_skipped_rounds, max_follow_ups >= 0, clock_ttl > 0, "
                                     "bulk_patience > 0")
        if not 0 < self.repair_min_gap <= self.repair_interval or \
                not 1 <= self.repair_want <= 4096:
            raise LocalProtocolError("0 < repair_min_gap <= repair_interval and "
                                     "1 <= repair_want <= 4096")
        if not 0 <= self.kin_explore <= 1:
            raise LocalProtocolError("kin_explore must be within [0, 1]")
        if self.sync_default not in SYNC_MODES:
            raise LocalProtocolError('sync_default must be "push" or "pull"')


@dataclass(frozen=True, slots=True)
class Notice:
    """Something an operator should know, as one line: ``str(notice)``.

    ``what``: ``refused`` (states a peer sent that the replica skipped), ``error`` (a
    link closed by a peer's fault or a failed request), ``dropped`` (a link we closed
    to protect resources), ``rejected`` (a link we refused, or the peer refused us),
    ``closed`` (the peer closed a link to protect itself: busy, duplicate, overload),
    ``fenced``/``unfenced`` (our write fence), ``storage`` (a local storage failure),
    ``diverged`` (digest repair found keys the watermarks had not shipped), ``lowered``
    (a watermark claim proved false: the origin and who claimed it).
    """

    level: Literal["info", "warning"]
    what: str
    peer: str | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        who = f"peer {self.peer}" if self.peer else "node"
        tail = f": {self.detail}" if self.detail else ""
        return f"{who}: {self.what} ({self.reason}){tail}"


def _unrestricted(scope: object) -> bool:
    """A scope that lets the peer receive every shareable key (None, or a PeerScope
    restricting nothing)."""
    return scope is None or (isinstance(scope, PeerScope) and normal(scope) is None)


def _covers(wide: object, narrow: object) -> bool:
    """Scope ``wide`` allows every key scope ``narrow`` allows (:meth:`PeerScope.covers`;
    a scope of another type is judged to cover only itself)."""
    if _unrestricted(wide):
        return True
    if _unrestricted(narrow):
        return False
    if isinstance(wide, PeerScope) and isinstance(narrow, PeerScope):
        return bool(wide.covers(narrow))
    return bool(wide == narrow)


def _no_scope(peer_id: str) -> object:
    return None


def _ignore(notice: Notice) -> None:
    pass


class SyncPolicy:
    """Every sync decision of one node; see the module docstring."""

    def __init__(
        self,
        replica_id: str,
        *,
        fingerprint: bytes,
        rng: random.Random,
        now: float,
        max_drift_ms: int = 600_000,
        config: PolicyConfig | None = None,
        session_config: SessionConfig | None = None,
        scope_of: Callable[[str], object] = _no_scope,
        report: Callable[[Notice], None] = _ignore,
        port: int = 0,
        identity: MemberIdentity | None = None,
        trust: TrustStore | None = None,
    ) -> None:
        self.replica_id = replica_id
        #: credential mode: our identity (its credential rides our HELLO) and the trust
        #: store peers' credentials are admitted by (a fresh one of its authority if None)
        self.identity = identity
        self.trust = None if identity is None else (
            trust if trust is not None else TrustStore(identity.authority))
        self.fingerprint = fingerprint
        self.rng = rng
        self.config = config if config is not None else PolicyConfig()
        self.session_config = session_config if session_config is not None \
            else SessionConfig()
        self.scope_of = scope_of
        self.report = report
        self.port = port
        self.clock = ClockWatch(max_drift_ms, ttl=self.config.clock_ttl)
        self.handshakes = HandshakeGate(self.config.max_handshakes)
        self.peers = PeerTable(self.config.max_peers_tracked)
        #: node-wide counts: syncs, pushes, busy (pulls we refused), dropped:<why>...
        self.counters: Counter[str] = Counter()
        #: the write fence this policy put up (None: none)
        self.fence: str | None = None
        #: the newest summary of our replica taken for a pull or a push
        self.last_summary: bytes | None = None
        self.next_round = now + self.config.interval * rng.random()
        cfg = self.config
        self.repair = RepairPlan(interval=cfg.repair_interval, min_gap=cfg.repair_min_gap,
                                 want_size=cfg.repair_want, rng=rng, now=now,
                                 jitter=cfg.jitter)
        #: the anti-entropy partner choice (kin first for a restricted member)
        self.kin = KinChoice(cfg.kin_explore)
        #: this node's one bulk pull, and the bulk pulls waiting for it
        self.bulk = BulkLease(cfg.bulk_lag, cfg.bulk_patience)
        #: a pull of ours completed since start (until then we cannot tell how far
        #: behind we are, so every pull from a peer we know nothing of is a bulk one)
        self._synced = False
        self._links: list[PeerLink] = []
        self._by_peer: dict[str, PeerLink] = {}
        self._queue: deque[StorageRequest] = deque()
        self._touched: dict[PeerLink, None] = {}
        self._slots_used = 0
        self._skipped = 0
        self._credential_refusals: Counter[str] = Counter()  # per peer name

    # ------------------------------------------------------------------ views

    @property
    def links(self) -> tuple[PeerLink, ...]:
        """Every live link, registered or not (handshaking, being refused)."""
        return tuple(self._links)

    @property
    def registered(self) -> dict[str, PeerLink]:
        """peer id -> its one registered link (a copy)."""
        return dict(self._by_peer)

    def peer_ids(self) -> tuple[str, ...]:
        """Peers with an open registered link, sorted."""
        return tuple(sorted(p for p, lk in self._by_peer.items() if lk.open))

    def link_to(self, peer: str) -> PeerLink | None:
        """The open registered link to ``peer``, if any."""
        link = self._by_peer.get(peer)
        return link if link is not None and link.open else None

    def dial_delay(self, peer: str) -> float | None:
        """How long to wait before dialling ``peer``, just discovered (None: do not, it
        is us or already linked).  On crossed dials both ends keep the link dialled by
        the smaller id, so that one dials at once and the other waits for it."""
        if peer == self.replica_id or self.link_to(peer) is not None:
            return None
        return 0.0 if self.replica_id < peer else _CROSSED_DIAL_WAIT

    def redundant_dial(self, peer: str | None) -> bool:
        """A connection we dialled reached ``peer`` (its authenticated id), which already
        has an open link we dialled: the new one would only be refused ``duplicate``."""
        existing = None if peer is None else self.link_to(peer)
        return existing is not None and existing.outbound

    def touched(self) -> list[PeerLink]:
        """Links whose session may have bytes to send or has closed since the last call
        (the driver flushes them, and drops the transport of closed ones)."""
        out = list(self._touched)
        self._touched.clear()
        return out

    # ------------------------------------------------------------------ links

    def open_link(self, now: float, wall_ms: int, *, outbound: bool,
                  expected_peer_id: str | None = None, address: str | None = None,
                  want_pull: bool = False, expected_peer_key: bytes | None = None
                  ) -> PeerLink:
        """A new connection (authenticated as ``expected_peer_id`` when given, or, on
        credentials, holding the TLS key ``expected_peer_key``): its session, whose HELLO
        is ready to send."""
        waiting = [lk for lk in self._links if not lk.registered and not lk.closed]
        if len(waiting) >= self.config.max_handshakes:  # the oldest silent one goes
            self._drop(waiting[0], now, "handshakes", "never finished its handshake")
        session = Session(replica_id=self.replica_id, fingerprint=self.fingerprint,
                          now=now, config=self.session_config, port=self.port,
                          expected_peer_id=expected_peer_id, wall_ms=wall_ms,
                          credential=None if self.identity is None
                          else self.identity.credential.to_bytes(),
                          trust=self.trust, expected_peer_key=expected_peer_key)
        link = PeerLink(session, outbound, expected_peer_id, address, opened_at=now,
                        want_pull=want_pull, last_progress=now)
        self._links.append(link)
        self._touched[link] = None
        return link

    def receive_data(self, link: PeerLink, data: bytes, now: float, wall_ms: int) -> None:
        """Bytes from ``link``'s transport (``b""``: it ended).  Never raises for
        anything the peer sent: a violation closes the link and is counted."""
        if link.closed:
            return
        # a violation closes the session itself; its ConnectionClosed event says why
        with contextlib.suppress(RemoteProtocolError):
            link.session.receive_data(data, now)
        self._pump(link, now, wall_ms)
        self._check_buffers(now)

    def handle_timeout(self, link: PeerLink, now: float) -> None:
        """Fire ``link``'s session timers (call at ``link.session.next_deadline()``)."""
        link.session.handle_timeout(now)
        self._pump(link, now)

    def close_link(self, link: PeerLink, now: float, reason: str = "closing") -> None:
        """We close ``link`` (shutdown, trimming, a transport that broke)."""
        self._call(link, "protocol", lambda: link.session.close(reason))
        self._pump(link, now)

    def fail(self, link: PeerLink, now: float, reason: str, detail: str) -> None:
        """Close ``link`` for a fault the driver saw (e.g. an exception in its task):
        counted against the peer and reported like any other link error."""
        self._close_for(link, reason, detail)
        self._pump(link, now)

    def forget(self, link: PeerLink) -> None:
        """The driver dropped ``link`` without a closing event (it vanished)."""
        if link.holding_slot:
            link.holding_slot = False
            self._slots_used -= 1
        if link.peer_id is not None and self._by_peer.get(link.peer_id) is link:
            del self._by_peer[link.peer_id]
        if link in self._links:
            self._links.remove(link)
        self._touched.pop(link, None)
        self.bulk.forget(link)

    # ------------------------------------------------------------------ rounds

    def round(self, now: float, wall_ms: int,
              candidates: Sequence[str] | None = None) -> str | None:
        """One anti-entropy round (call at ``next_round``).  Peers are the linked ones,
        or ``candidates`` (distinct members known to the caller; with an O(1) ``index``,
        as the simulator's membership has, a round costs O(links), not O(members));
        returns a member to dial
        (with ``open_link(..., want_pull=True)``) when the chosen one has no link."""
        cfg = self.config
        self.next_round = now + cfg.interval * self.rng.uniform(1 - cfg.jitter, 1 + cfg.jitter)
        self._check_clock(now, wall_ms)
        self.repair.tick(now)
        self._settle_bulk(now)
        if self._skipped < cfg.max_skipped_rounds and \
                any(lk.session.receiving for lk in self._by_peer.values()):
            self._skipped += 1
            return None
        self._skipped = 0
        early = self._early_repair(now)
        if early is not None:  # evidence asks: this round repairs that link
            self._pull(early, now)
            return None
        pool: Sequence[str]
        if candidates is None:
            pool = [p for p, lk in self._by_peer.items() if lk.open and not lk.session.pulling]
        else:  # distinct ids, maybe thousands: a view, not a copy (see _choice.py)
            busy = [p for p, lk in self._by_peer.items() if lk.session.pulling]
            pool = Excluding(candidates, [self.replica_id, *busy])
        if not pool:
            return None
        peer = self.kin.pick(pool, self._peer_scope, self.rng)
        return peer if self.pull_from(peer, now) else None

    def _peer_scope(self, peer: str) -> object:
        """What ``peer`` may receive: its link's scope, or its access-list scope."""
        link = self._by_peer.get(peer)
        return link.scope if link is not None else self.scope_of(peer)

    def pull_from(self, peer: str, now: float) -> bool:
        """Pull from ``peer`` now, on its link; True when there is none (dial it)."""
        link = self.link_to(peer)
        if link is not None:
            self._pull(link, now)
            return False
        for lk in self._links:
            if not lk.closed and not lk.registered and peer in (lk.expected_peer_id,
                                                                  lk.peer_id):
                lk.want_pull = True  # still handshaking: pull once it is registered
                return False
        return True

    def pull_all(self, now: float) -> None:
        """Pull on every open link at once (``Node.sync_now``)."""
        for link in self._by_peer.values():
            self._pull(link, now)

    def local_changes(self, changes: Iterable[object], *, reset: bool = False
                      ) -> PushDecision:
        """A page of the change journal (``changes_since``): push now when a local
        write in it asks to (:func:`._pushes.push_decision`, modes per write, else
        ``config.sync_default``), counting local writes by mode (``writes:push``,
        ``writes:pull``).  Pull-mode writes wait for anti-entropy."""
        decision = push_decision(changes, reset=reset, default=self.config.sync_default)
        self.counters["writes:push"] += decision.pushed
        self.counters["writes:pull"] += decision.pulled
        if decision.push and self._by_peer:
            self.local_writes(priority=decision.priority)
        return decision

    def local_writes(self, *, priority: bool = False) -> None:
        """New local writes: push them on every link (pull where the peer's summary is
        not known yet).  Pushes carry only this replica's own writes."""
        self._queue.append(Summary(None, "push", priority))

    # ------------------------------------------------------------------ storage

    def next_request(self) -> StorageRequest | None:
        """The next storage request to perform (requests of closed links are dropped)."""
        while self._queue:
            req = self._queue.popleft()
            link = getattr(req, "link", None)
            if link is None or not link.closed:
                return req
            if isinstance(req, Summary):
                link.awaiting_summary = False
        return None

    @property
    def pending_requests(self) -> int:
        return len(self._queue)

    def complete(self, req: StorageRequest, outcome: Outcome, now: float) -> None:
        """The outcome of performing ``req``: answer the session that asked."""
        match req:
            case Summary(link=None):
                self._pushed(req, outcome, now)
            case Summary(link=PeerLink() as link):
                link.awaiting_summary = False
                if not outcome.ok:
                    self._storage_failed(outcome, "sync_summary")
                else:
                    self.last_summary = summary = outcome.data
                    if link.pull is not None:
                        link.pull.summary = summary
                    reply = req.purpose == "reply"
                    if link.open and not link.session.pulling:
                        # e.g. our summary larger than the peer's frame cap: that link
                        # closes (counted), the node carries on
                        self._call(link, "frame-size", lambda: link.session.start_sync(
                            summary, now, reply=reply))
                self._pump(link, now)
            case Changes(link=link, request=request):
                if not outcome.ok:
                    self._close_for(link, "invalid-summary" if outcome.typed else "internal",
                                    f"sync_changes failed: {outcome.error}: {outcome.detail}")
                elif not link.closed:
                    data = outcome.data
                    self._call(link, "frame-size", lambda: link.session.changes_ready(
                        request, data, now))
                self._release_slot(link)
                self._pump(link, now)
            case Apply(link=link):
                self._applied(req, outcome, now)
                self._pump(link, now)
            case Fence():
                if not outcome.ok:
                    self._storage_failed(outcome, "write fence")

    # ------------------------------------------------------------------ internals

    def _pump(self, link: PeerLink, now: float, wall_ms: int | None = None) -> None:
        """Do what ``link``'s session events ask."""
        s = link.session
        while (e := s.next_event()) is not None:
            match e:
                case ev.HandshakeComplete():
                    self._handshake(link, e, now, wall_ms)
                case ev.NeedSummary():
                    # the reverse half of a round; not while data from this peer is still
                    # being applied (it would fetch what is already on its way)
                    if link.open and not s.pulling and not s.receiving:
                        self._pull(link, now, purpose="reply")
                case ev.NeedChanges():
                    self._need_changes(link, e, now)
                case ev.ApplyChanges():
                    if link.open:
                        self._queue.append(Apply(link, e.n, e.data))
                case ev.SyncCompleted():
                    self._sync_completed(link, e, now)
                case ev.SyncRejected():
                    self.counters[f"pull-refused:{e.reason}"] += 1
                case ev.PeerRejected():
                    link.rejected_reason = e.reason
                    if e.reason not in _PEER_PROTECTS:
                        self.report(Notice("info", "rejected", link.name, e.reason,
                                           "the peer refused this link"))
                case ev.ConnectionClosed():
                    self._closed(link, e, now)
        self._touched[link] = None
        self._settle_bulk(now)

    def _settle_bulk(self, now: float) -> None:
        """Once the bulk transfer ended, start the pulls that waited for it."""
        for link, purpose in self.bulk.settle(now):
            self._pull(link, now, purpose=purpose)

    def _handshake(self, link: PeerLink, e: ev.HandshakeComplete, now: float,
                   wall_ms: int | None) -> None:
        link.peer_id = e.peer_id
        self.peers.touch(e.peer_id, now, self._by_peer)
        self.clock.heard(e.peer_id, e.wall_ms, now)
        if self._register(link, now) and wall_ms is not None:
            self._check_clock(now, wall_ms)

    def _register(self, link: PeerLink, now: float) -> bool:
        """Make ``link`` the one link of its peer, or refuse it."""
        peer = link.peer_id
        assert peer is not None
        cfg = self.config
        existing = self._by_peer.get(peer)
        if existing is not None and existing is not link and not existing.closed:
            keep = self._one_of(existing, link)
            loser = link if keep is existing else existing
            if loser.want_pull:
                keep.want_pull = True
            crossed = existing.outbound != link.outbound  # both dialled at once: benign
            self._refuse(loser, "duplicate", now,
                         "crossed dials: the link dialled by the smaller id stays" if crossed
                         else "a second link under the same peer id",
                         level="info" if crossed else "warning")
            if loser is link:
                if keep.want_pull:
                    self._pull(keep, now)
                return False
        if len(self._by_peer) >= cfg.max_links and not self._evict(
                self._by_peer.values(), now, "max-links"):
            self._refuse(link, "busy", now, f"already {len(self._by_peer)} links")
            return False
        if link.address is not None:
            same = [lk for lk in self._by_peer.values() if lk.address == link.address]
            if len(same) >= cfg.max_links_per_address and not self._evict(
                    same, now, "max-links-per-address"):
                self._refuse(link, "busy", now, f"already {len(same)} links from its address")
                return False
        link.registered = True
        link.scope = self._scope(link, peer)
        self.kin.forget(peer)
        link.last_progress = now
        self._by_peer[peer] = link
        if link.outbound or link.want_pull:
            self._pull(link, now)
        return True

    def _scope(self, link: PeerLink, peer: str) -> object:
        """What ``peer`` may receive: its access-list scope, intersected with its
        credential's read grants on credentials (a scope of another type than
        ``PeerScope`` is kept as it is)."""
        scope = self.scope_of(peer)
        cred = link.session.peer_credential
        if cred is not None and (scope is None or isinstance(scope, PeerScope)):
            return restrict(scope, cred.read)
        return scope

    def _one_of(self, existing: PeerLink, new: PeerLink) -> PeerLink:
        """Which of two links to one peer survives: on crossed dials the one dialled by
        the smaller replica id (both ends pick the same), else the older one."""
        def initiator(lk: PeerLink) -> str:
            return self.replica_id if lk.outbound else (lk.peer_id or "")

        a, b = initiator(existing), initiator(new)
        if a != b:
            return existing if a < b else new
        return existing

    def _evict(self, links: Iterable[PeerLink], now: float, why: str) -> bool:
        victim = expendable(list(links))
        if victim is None:
            return False
        self._drop(victim, now, why, "replaced by a new peer")
        return True

    def _refuse(self, link: PeerLink, reason: str, now: float, detail: str, *,
                level: Literal["info", "warning"] = "warning") -> None:
        self.counters[f"refused-link:{reason}"] += 1
        self.report(Notice(level, "rejected", link.name, reason, detail))
        link.session.reject(reason)
        if link.registered:
            self._pump(link, now)

    def _drop(self, link: PeerLink, now: float, why: str, detail: str) -> None:
        """Close a link to protect this node's resources."""
        self.counters[f"dropped:{why}"] += 1
        self.report(Notice("warning", "dropped", link.name, why, detail))
        link.session.close("overload")
        self._pump(link, now)

    def _close_for(self, link: PeerLink, reason: str, detail: str) -> None:
        """Close a link because of its peer's (or a request's) fault: counted."""
        if link.closed:
            return
        self._count_error(link, reason, detail)
        link.session.close("protocol")

    def _count_error(self, link: PeerLink, reason: str, detail: str) -> None:
        if link.peer_id is not None:
            stats = self.peers.touch(link.peer_id, link.last_progress, self._by_peer)
            stats.errors[reason] += 1
            stats.last_error = reason
        self.counters[f"error:{reason}"] += 1
        if reason == "credential":  # a member redialling with a bad credential: one
            refused = self._credential_refusals  # line per doubling, as for TLS failures
            who = link.address or link.name
            if len(refused) >= 1024 and who not in refused:
                refused.clear()
            refused[who] += 1
            count = refused[who]
            if count & (count - 1):
                return
            detail = f"{detail} (from {who}" + (f", {count} times)" if count > 1 else ")")
        self.report(Notice("warning", "error", link.name, reason, detail))

    def _call(self, link: PeerLink, reason: str, fn: Callable[[], _T]) -> _T | None:
        """Call the session; a local protocol error closes this link, never escapes."""
        try:
            return fn()
        except LocalProtocolError as exc:
            self._close_for(link, reason, str(exc))
            return None

    def _pull(self, link: PeerLink, now: float, *,
              purpose: Literal["pull", "reply"] = "pull", bulk: bool = False) -> None:
        """Pull from ``link``'s peer (``bulk``: it continues a bulk transfer); a bulk
        pull while another link's runs waits for it."""
        if not link.open or link.session.pulling or link.awaiting_summary:
            link.want_pull = link.want_pull or not link.registered
            return
        link.want_pull = False
        if (bulk or self.bulk.bulk(self.last_summary, link.session.peer_summary,
                                   synced=self._synced)) \
                and not self.bulk.acquire(link, purpose, now):
            self.counters["bulk-deferred"] += 1
            return
        link.awaiting_summary = True
        stats = self._stats(link, now)
        record = link.pull = self.repair.plan(stats.repair, now)
        if record.digest:
            stats.repairs += 1
            self.counters["repairs"] += 1
        self._queue.append(Summary(link, purpose, digest=record.digest,
                                   digest_scope=record.scope, want=record.want))

    def _stats(self, link: PeerLink, now: float) -> PeerStats:
        """The counters and repair state of a registered link's peer."""
        assert link.peer_id is not None
        return self.peers.touch(link.peer_id, now, self._by_peer)

    def _early_repair(self, now: float) -> PeerLink | None:
        """An open link, not pulling, whose peer's early repair is due (the one
        repaired longest ago), if any."""
        due: list[tuple[float, PeerLink]] = []
        for peer, link in self._by_peer.items():
            stats = self.peers.get(peer)
            if stats is not None and link.open and not link.session.pulling and \
                    self.repair.early_due(stats.repair, now):
                due.append((stats.repair.last, link))
        return min(due, key=lambda d: d[0])[1] if due else None

    def _need_changes(self, link: PeerLink, e: ev.NeedChanges, now: float) -> None:
        if not link.open:
            return  # an unregistered link never serves
        if e.purpose == "serve" and e.first:
            self._peer_syn(link, e.summary, now)
        if e.purpose == "serve" and e.first and not link.holding_slot:
            if self._slots_used >= self.config.max_syncs:
                self.counters["busy"] += 1
                self._call(link, "protocol", lambda: link.session.refuse(e.request, "busy"))
                return
            self._slots_used += 1
            link.holding_slot = True
        self._queue.append(Changes(link, e.request, e.summary, e.max_bytes, link.scope,
                                   e.purpose))

    def _release_slot(self, link: PeerLink) -> None:
        if link.holding_slot and (link.closed or not link.session.serving):
            link.holding_slot = False
            self._slots_used -= 1

    def _applied(self, req: Apply, outcome: Outcome, now: float) -> None:
        link = req.link
        if link.closed:
            return
        if not outcome.ok:
            self._count_error(link, "invalid-changes" if outcome.typed else "internal",
                              f"sync_apply refused the data: {outcome.error}: {outcome.detail}")
            link.session.apply_failed(req.n, now)
            return
        link.last_progress = now
        self._call(link, "protocol", lambda: link.session.applied(req.n, now))
        if outcome.result is not None and link.peer_id is not None:
            self._repair_applied(link, outcome.result, now)
        refused = [] if outcome.result is None else list(outcome.result.refused)
        if refused and link.peer_id is not None:
            stats = self.peers.touch(link.peer_id, now, self._by_peer)
            reasons = Counter(r.reason for r in refused)
            stats.refusals.update(reasons)
            self.counters.update({f"refused:{r}": n for r, n in reasons.items()})
            self.report(Notice("warning", "refused", link.peer_id,
                               ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())),
                               f"{len(refused)} of the states it sent were skipped"))

    def _repair_applied(self, link: PeerLink, result: ApplyReport, now: float) -> None:
        """Digest repair's part of an applied payload: the scope the peer serves us, the
        keys its listing says differ, the keys repaired, claims taken and proved false."""
        stats = self._stats(link, now)
        peer = link.name
        repaired = self.repair.applied(stats.repair, link.pull, changed=result.changed,
                                       scope=result.scope, wanted=result.wanted)
        self.kin.served(result.scope)
        if repaired:
            stats.repaired += repaired
            self.counters["repaired"] += repaired
        if result.wanted:
            self.report(Notice("warning", "diverged", peer, "digest", (
                f"{len(result.wanted)} keys differ from the peer's although the "
                f"watermarks said they were in sync; asking for them")))
        if result.through:
            self.repair.ledger.claimed(peer, result.through)
        if result.lowered:
            self._lowered(link, stats.repair, result.lowered, now)

    def _lowered(self, link: PeerLink, st: PeerRepair, lowered: Mapping[str, int],
                 now: float) -> None:
        """Watermarks a state from ``link``'s peer proved false: count each against the
        peer whose claim last raised it (a liar, a relay of a lie, or an honest claim
        about a key this replica lost since), tell the operator, repair that link early."""
        parts = []
        for origin, value in sorted(lowered.items()):
            claimant = self.repair.ledger.claimant(origin)
            if claimant is not None:
                self.peers.touch(claimant, now, self._by_peer).false_claims += 1
            self.counters["lowered"] += 1
            parts.append(f"{origin} to {value}, last raised by a claim of "
                         f"{'peer ' + claimant if claimant else 'a peer unknown here'}")
        shown = "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3
                                         else "")
        self.report(Notice("warning", "lowered", link.name, "false-claim",
                           f"a state it sent proved watermarks false: lowered {shown}"))
        self.repair.evidence(st)

    def _sync_completed(self, link: PeerLink, e: ev.SyncCompleted, now: float) -> None:
        self.counters["syncs"] += 1
        self._synced = True
        link.last_progress = now
        follow = False
        if link.peer_id is not None:
            stats = self._stats(link, now)
            stats.syncs += 1
            stats.last_sync = now
            record, link.pull = link.pull, None
            if record is not None:
                follow = self._repair_completed(link, stats, record, now)
        if (e.more or follow) and link.follow_ups < self.config.max_follow_ups:
            link.follow_ups += 1
            self._pull(link, now, bulk=e.more)
        else:
            link.follow_ups = 0

    def _repair_completed(self, link: PeerLink, stats: PeerStats, record: PullRecord,
                          now: float) -> bool:
        """Judge a completed pull for digest repair; True: pull again at once."""
        st = stats.repair
        self.repair.completed(st, record, covers=self._covers(link, st))
        if record.quiet and record.summary is not None:
            link.roots.ours = (now, record.summary)
            self._compare_roots(link, stats)
        else:
            link.roots.ours = None
        return self.repair.follow(st, now)

    def _comparable(self, link: PeerLink, st: PeerRepair) -> bool:
        """We serve the peer everything and it serves us everything (as far as we know):
        unequal roots then mean unequal shared state."""
        return _unrestricted(link.scope) and self.repair.served_scope(st)[0] is None

    def _covers(self, link: PeerLink, st: PeerRepair) -> bool:
        """The peer may hold every key we may hold: we serve it at least what it serves
        us (its ACL class is ours or wider), so its digest can show what we lack."""
        return _covers(link.scope, self.repair.served_scope(st)[0])

    def _peer_syn(self, link: PeerLink, summary: bytes, now: float) -> None:
        """The peer pulls from us: its summary's root, paired with our last quiet pull's
        (one exchange), may settle a check or count as evidence."""
        link.roots.theirs = (now, summary)
        stats = self._stats(link, now)
        self._compare_roots(link, stats)
        if self.repair.follow(stats.repair, now):
            self._pull(link, now)

    def _compare_roots(self, link: PeerLink, stats: PeerStats) -> None:
        pair = link.roots.take(self.config.interval)
        if pair is None:
            return
        st = stats.repair
        comparable = self._comparable(link, st)
        if not (comparable or self.repair.check_pending):
            return  # nothing to judge: leave the summaries unread
        self.repair.compared(st, summary_root(pair[0]), summary_root(pair[1]),
                             comparable=comparable, covers=self._covers(link, st))

    def _pushed(self, req: Summary, outcome: Outcome, now: float) -> None:
        if not outcome.ok:
            self._storage_failed(outcome, "sync_summary")
            return
        summary = outcome.data
        self.last_summary = summary
        for link in list(self._by_peer.values()):
            if link.open:
                self._push_on(link, summary, req.priority, now)
                self._pump(link, now)

    def _push_on(self, link: PeerLink, summary: bytes, priority: bool, now: float) -> None:
        session = link.session
        pushed = self._call(link, "protocol", lambda: session.request_push(
            now, priority=priority, local_summary=summary))
        if pushed:
            self.counters["pushes"] += 1
        elif link.open and not session.pulling and not link.awaiting_summary:
            self._call(link, "frame-size", lambda: session.start_sync(summary, now))

    def _closed(self, link: PeerLink, e: ev.ConnectionClosed, now: float) -> None:
        link.closed_reason = e.reason
        self._release_slot(link)
        self.bulk.forget(link)
        peer = link.peer_id
        if peer is not None:
            stats = self.peers.touch(peer, now, self._by_peer)
            stats.bytes_in += link.session.bytes_received
            stats.bytes_out += link.session.bytes_sent
            if self._by_peer.get(peer) is link:
                del self._by_peer[peer]
        if e.error and e.reason in _PEER_PROTECTS:
            # the peer refused or dropped the link to protect itself: not its fault
            self.counters[f"closed-by-peer:{e.reason}"] += 1
            self.report(Notice("info", "closed", link.name, e.reason, e.detail))
        elif e.error:
            self._count_error(link, e.reason, e.detail)
        if link in self._links:
            self._links.remove(link)

    def _storage_failed(self, outcome: Outcome, what: str) -> None:
        self.counters[f"storage:{outcome.error}"] += 1
        self.report(Notice("warning", "storage", None, outcome.error or "?",
                           f"{what} failed: {outcome.detail}"))

    def _check_buffers(self, now: float) -> None:
        for link in hoarders(self._links, self.config.max_buffered):
            self._drop(link, now, "buffered",
                       f"holds a partial frame of {link.session.buffered} bytes while the "
                       f"node's buffers are full")

    def _check_clock(self, now: float, wall_ms: int) -> None:
        verdict = self.clock.verdict(now, wall_ms, self._by_peer)
        if verdict is not None and self.fence is None:
            self.fence = verdict
            self._queue.append(Fence(verdict))
            self.report(Notice("warning", "fenced", None, "clock-ahead", verdict))
        elif verdict is None and self.fence is not None:
            self.fence = None
            self._queue.append(Fence(None))
            self.report(Notice("warning", "unfenced", None, "clock-agrees",
                               "this clock agrees with its peers again: writes resume"))

"""When a node runs digest repair, with which peer, and which keys it asks for.

Watermarks (Scuttlebutt) cannot see a divergence that a false claim, a bug or a
restored backup hid; storage's digest repair can (``memmesh.storage._repair``: bucketed
state digests compared, then the keys of the differing buckets listed and shipped: one
level of the Merkle-tree anti-entropy of Dynamo, Cassandra and Riak's AAE, which runs
continuously in the background because operators forget to run repair by hand).  The
:class:`RepairPlan` decides when a pull's summary carries the digest
(``sync_summary(digest=True, digest_scope=...)``) and which keys it asks for (``want``):

* **compared roots**: every summary carries ``root``, the digest of the sender's whole
  shareable state.  In one push-pull exchange our pull completes just before or after
  the peer's SYN arrives (:class:`RootPair` pairs them), so when our pull applied
  nothing we can compare our root with the peer's of the same moment;
* **scheduled**: every ``interval`` (jittered) the node checks the peer of its next
  exchange: equal roots after a quiet pull mean the replicas were equal and the check
  costs nothing; otherwise, if the peer may hold every key we may hold (we serve it at
  least what it serves us: a member of our ACL class, or a wider one), the next pull
  on that link is a repair pull; a peer of a narrower class could not tell us what we
  lack, so the check waits for another exchange (until the next interval).  One check
  per node per interval, whatever its number of links: the cost grows with the fleet,
  not with its links, and a converged fleet that shares everything pays nothing;
* **early, on evidence**: a watermark proved false (``ApplyResult.lowered``), or two
  quiet exchanges in a row with a peer that serves us everything and that we serve
  everything whose roots differed (watermarks said "nothing to ship", digests "not
  equal"; one such exchange is normal: the peer may lack what we have and take it in
  its own pull).  Early repairs of a peer are rate limited: none sooner than its ``gap``
  after its last one; the gap starts at ``min_gap`` and doubles, up to ``interval``,
  with every repair that repairs nothing (exponential back-off), and starts over when
  one repairs something, which is then checked again until one finds nothing;
* **what was found**: the keys of ``ApplyResult.wanted`` queue per peer (at most
  :data:`MAX_BACKLOG`) and ride the following pulls' ``want``, ``want_size`` at a time.

The digest is summed over the scope the peer applies to us (``ApplyResult.scope`` of
its payloads; until a peer said, the scope the last peer said: members usually get the
same ACL everywhere).  The first chunk answering a repair pull is always delivered,
even empty, so a wrong guess is corrected at once by a follow-up repair.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MAX_BACKLOG", "STRIKES", "ClaimLedger", "PeerRepair", "PullRecord",
           "RepairPlan", "RootPair"]

#: Most keys queued to ask one peer for (storage's ``want`` bound, ``repair.MAX_WANT``).
MAX_BACKLOG = 4096

#: Quiet exchanges in a row with differing roots before an early repair.
STRIKES = 2


@dataclass(slots=True)
class PeerRepair:
    """Digest repair's bookkeeping for one peer, kept across its reconnects."""

    last: float = -math.inf  # when the last repair pull with it started
    gap: float = 0.0  # back-off before its next early repair (0: the plan's minimum)
    scheduled: bool = False  # the node's scheduled check asks for a repair pull
    early: bool = False  # evidence asks for an early repair
    strikes: int = 0  # quiet exchanges in a row whose roots differed
    backlog: list[str] = field(default_factory=list)  # keys to ask it for, oldest first
    scope: object = None  # the scope it says it serves us (ApplyResult.scope)
    scope_known: bool = False


@dataclass(slots=True)
class PullRecord:
    """What one pull asked for and got, judged when it completes."""

    digest: bool
    scope: object  # the digest's scope
    guessed: bool  # that scope was a guess (the peer never said)
    want: tuple[str, ...]
    checking: bool = False  # the repair pull of the node's scheduled check
    summary: bytes | None = None  # ours, once taken
    changed: int = 0  # keys whose state changed while it ran
    wanted: int = 0  # keys the peer's listing showed we lack or hold otherwise
    repaired: int = 0  # keys of ``want`` that changed our state
    scope_mismatch: bool = False  # the peer served another scope than the digest's

    @property
    def quiet(self) -> bool:
        """A plain pull that changed nothing here."""
        return not (self.digest or self.want or self.changed)


@dataclass(slots=True)
class RootPair:
    """Our summary of a quiet pull and the peer's SYN summary on one link, each with
    the time it came; :meth:`take` pairs them when they came within ``window`` of each
    other (one exchange: the initiator's pull completes just before the peer's reverse
    SYN arrives, the responder's pull starts just after the peer's SYN)."""

    ours: tuple[float, bytes] | None = None
    theirs: tuple[float, bytes] | None = None

    def take(self, window: float) -> tuple[bytes, bytes] | None:
        if self.ours is None or self.theirs is None:
            return None
        if abs(self.ours[0] - self.theirs[0]) > window:
            return None
        pair = (self.ours[1], self.theirs[1])
        self.ours = self.theirs = None
        return pair


class ClaimLedger:
    """Which peer's accepted claim last raised our watermark of each origin, so a
    watermark proved false names the peer that claimed it (bounded: oldest forgotten)."""

    def __init__(self, limit: int = 16384) -> None:
        self.limit = limit
        self._by_origin: OrderedDict[str, str] = OrderedDict()

    def claimed(self, peer: str, origins: Iterable[str]) -> None:
        for origin in origins:
            self._by_origin[origin] = peer
            self._by_origin.move_to_end(origin)
        while len(self._by_origin) > self.limit:
            self._by_origin.popitem(last=False)

    def claimant(self, origin: str) -> str | None:
        return self._by_origin.get(origin)


class RepairPlan:
    """The node-wide schedule and the per-peer rules of the module docstring."""

    def __init__(self, *, interval: float, min_gap: float, want_size: int,
                 rng: random.Random, now: float, jitter: float = 0.1) -> None:
        self.interval = interval
        self.min_gap = min_gap
        self.want_size = want_size
        self.jitter = jitter
        # its own stream, drawn once from the policy's: the checks' jitter never shifts
        # the policy's peer choices (a run with repair on and one with it off pick the
        # same peers, so their bytes compare)
        self.rng = random.Random(rng.getrandbits(64))
        self.ledger = ClaimLedger()
        #: when the next scheduled check is due (a random phase, like rounds)
        self.next_check = now + interval * self.rng.random() if math.isfinite(interval) \
            else math.inf
        #: a scheduled check is due and not settled yet
        self.check_due = False
        #: the peer whose repair pull the check waits for
        self._checking: PeerRepair | None = None
        #: scheduled checks that found the replicas equal by their roots (free)
        self.clean_checks = 0
        self._scope_guess: object = None

    # ------------------------------------------------------------------ schedule

    @property
    def check_pending(self) -> bool:
        """A scheduled check waits for the next exchange."""
        return self.check_due and self._checking is None

    def tick(self, now: float) -> None:
        """Called every round: arm the scheduled check when it is due (a check whose
        repair pull never ran, its link gone, is dropped)."""
        if now >= self.next_check:
            self.check_due = True
            self._checking = None
            self.next_check = now + self.interval * self.rng.uniform(
                1 - self.jitter, 1 + self.jitter)

    def early_due(self, st: PeerRepair, now: float) -> bool:
        return st.early and now >= st.last + (st.gap or self.min_gap)

    def follow(self, st: PeerRepair, now: float) -> bool:
        """Pull from this peer again at once: keys to ask for, or a repair now due."""
        return bool(st.backlog) or st.scheduled or self.early_due(st, now)

    def served_scope(self, st: PeerRepair) -> tuple[object, bool]:
        """The scope the peer serves us, and whether that is a guess (it never said:
        the scope the last peer said, as members usually get one ACL everywhere)."""
        return (st.scope, False) if st.scope_known else (self._scope_guess, True)

    # ------------------------------------------------------------------ pulls

    def plan(self, st: PeerRepair, now: float) -> PullRecord:
        """What the next pull from a peer carries: a digest when its check or evidence
        asks for one, and the next keys of its backlog."""
        want = tuple(st.backlog[:self.want_size])
        del st.backlog[:self.want_size]
        digest = st.scheduled or self.early_due(st, now)
        scope, guessed = self.served_scope(st)
        checking = digest and st is self._checking
        if digest:
            st.scheduled = st.early = False
            st.last = now
        return PullRecord(digest, scope, guessed, want, checking)

    def applied(self, st: PeerRepair, record: PullRecord | None, *, changed: Iterable[str],
                scope: object, wanted: Iterable[str]) -> int:
        """A payload from the peer was applied during ``record``'s pull (None: outside
        a pull); returns how many keys it repaired."""
        st.scope, st.scope_known = scope, True
        self._scope_guess = scope
        listed = list(wanted)
        queued = set(st.backlog)
        room = MAX_BACKLOG - len(st.backlog)
        st.backlog.extend([k for k in listed if k not in queued][:max(0, room)])
        if record is None:
            return 0
        changed = tuple(changed)
        record.changed += len(changed)
        record.wanted += len(listed)
        if record.digest and scope != record.scope:
            record.scope_mismatch = True
        repaired = len(set(record.want).intersection(changed)) if record.want else 0
        record.repaired += repaired
        return repaired

    def evidence(self, st: PeerRepair) -> None:
        """Something proved a watermark false: repair this peer early."""
        st.early = True

    def completed(self, st: PeerRepair, record: PullRecord, *, covers: bool) -> None:
        """A pull completed.  Back-off: a repair that repaired something resets the gap
        and is checked again; one that found nothing (or whose wanted keys changed
        nothing) doubles it.  A pull that was not quiet makes a pending scheduled check a
        repair pull (roots of a moving state say nothing) if the peer ``covers`` what we
        may hold; the check's own repair pull settles it."""
        if record.checking:
            self._checking = None
            if record.scope_mismatch and record.guessed:
                self._check(st)  # nothing was compared: again, over the scope it named
            else:
                self.check_due = False
        if record.repaired:
            st.gap = 0.0
            st.early = True
        elif record.digest and record.scope_mismatch:
            # the peer serves us another scope than the one summed: nothing was compared
            if record.guessed:
                st.scheduled = True  # now that it said, at once
            else:
                st.early = True
        elif (record.digest and not record.wanted) or (record.want and not st.backlog):
            st.gap = min(2 * (st.gap or self.min_gap), self.interval)
        if not record.quiet and not record.digest:
            st.strikes = 0
            if self.check_pending and covers:
                self._check(st)

    def _check(self, st: PeerRepair) -> None:
        """The scheduled check repairs with this peer."""
        st.scheduled = True
        self._checking = st


    def compared(self, st: PeerRepair, ours: bytes | None, theirs: bytes | None, *,
                 comparable: bool, covers: bool) -> None:
        """Our root after a quiet pull and the peer's from the same exchange.
        ``comparable``: the peer serves us everything and we serve it everything, so
        unequal roots mean unequal shared state; ``covers``: the peer may hold every key
        we may hold, so a repair with it can find what we lack."""
        equal = ours is not None and ours == theirs
        if self.check_pending:
            if equal:
                self.check_due = False
                self.clean_checks += 1  # the replicas were equal: nothing to send
            elif covers:
                self._check(st)
        if comparable and not equal and ours is not None and theirs is not None:
            st.strikes += 1
            if st.strikes >= STRIKES:
                st.strikes = 0
                st.early = True
        else:
            st.strikes = 0

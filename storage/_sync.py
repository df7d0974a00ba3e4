"""The sync calls: ``sync_summary``, ``sync_changes``, ``sync_apply``, ``state_digest``.

Scuttlebutt-style watermarks (van Renesse et al. 2008) over full per-key states, so any
subset of keys may ship in any order. A summary says how far this replica holds each
origin; the answer carries the states of the keys with events beyond those marks that
the peer may see (priority first; without the timeline events of the origins the marks
show the peer holds: ``keystate.unseen_by``) and ``through`` claims that let the peer
raise its marks past events it will never get. A claim is taken only without gaps, and
scoped claims stay qualified by their scope (a complete watermark per origin and one per
scope a peer filtered with; a scope's marks are claimed only to a peer whose scope lies
inside it: :func:`._watermarks.vouchable`), so a claim never vouches for events its
receiver lacks. Lying
claims are bounded by :mod:`._watermarks` and what they hid is found by digest repair
(:mod:`._repair`); a payload's keys are judged one by one (:mod:`._incoming`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from memmesh.crdt import DecodeError, InvalidArgumentError
from memmesh.crdt.keystate import join, unseen_by
from memmesh.trust import TrustStore

from . import _digest as stored_digest
from . import _retired as rt
from ._env import Env, Txn
from ._gcpause import gc_paused
from ._incarnation import counter_key, own_counters
from ._incoming import cap, read_changes
from ._indexes import latest_counter, origin_entries, origins, unstorable
from ._keycodec import decode, encode
from ._keystore import NewKey, store, store_new
from ._proofrows import Intake, Outbox
from ._records import ApplyResult, Refusal
from ._repair import bucket_listing, differing, scope_sums, wanted
from ._retiring import EARLIER_QUIET_MS, latest_stamp, propose
from ._revocations import Revocations
from ._stamps import Stamps
from ._watermarks import MAX_SUMMARY_ORIGINS, SID_LEN, WM, WQ, Table, capped, marks, vouchable
from .wire import (
    MAX_COUNTER,
    MAX_HASHES,
    MAX_RETIRED_PER_PAYLOAD,
    Changes,
    PeerScope,
    Summary,
    bad,
    check_want,
    normal,
    parse_summary,
)

__all__ = ["Sync"]

log = logging.getLogger(__name__)

_STATE_OVERHEAD = 5  # msgpack bin header of one shipped state, at most
_HASH_OVERHEAD = 14  # msgpack of one (key, 8-byte hash) pair beyond the key's bytes
_HASHES_OVERHEAD = 16  # the "hashes" field name and its array header
_PROOF_OVERHEAD = 16  # msgpack of one (origin, counter, proof) beyond the origin and proof
_RETIRED_OVERHEAD = 10  # msgpack of one retired entry beyond its origin's bytes


class Sync:
    """The sync primitives of a replica. ``collect`` removes expired memories: a
    summary and a digest describe the state after collection."""

    def __init__(self, env: Env, stamps: Stamps, collect: Callable[[], int],
                 trust: TrustStore | None = None,
                 revocations: Revocations | None = None) -> None:
        self._env = env
        self._trust = trust
        self._revocations = revocations or Revocations(trust)
        self._refusals: dict[tuple[str, str], int] = {}  # (origin, reason) -> count
        self._stamps = stamps
        self._collect = collect
        self.replica_id = stamps.replica_id

    # -- summary ----------------------------------------------------------------------

    def _watermarks(self, txn: Txn, *, claims: bool = False,
                    peer: PeerScope | None = None) -> dict[str, int]:
        """What a summary shows (every watermark, the greatest per origin), or, with
        ``claims``, what we may claim to a peer of scope ``peer`` (see module doc)."""
        if claims:
            wm = vouchable(txn, normal(peer))
        else:
            wm = marks(txn, WM)
            for k, v in txn.prefix("meta", WQ):
                origin, counter = k[len(WQ) + SID_LEN:].decode(), int.from_bytes(v, "big")
                if counter > wm.get(origin, 0):
                    wm[origin] = counter
        # own origins (every incarnation minted here, legacy bare id included) at least at
        # their counter; the current one exactly (authoritative: claims about it are not
        # taken), older ones raised by claims like any remote origin
        for origin, counter in own_counters(txn, self.replica_id).items():
            if origin == self._stamps.origin or counter > wm.get(origin, 0):
                wm[origin] = counter
        return wm

    def sync_summary(self, *, digest: bool = False, digest_scope: PeerScope | None = None,
                     want: Sequence[str] = ()) -> bytes:
        """What this replica holds, for a peer's ``sync_changes`` (see module doc).

        ``digest=True`` adds the 256 bucket sums over the shareable keys inside
        ``digest_scope`` (the scope that peer applies to this replica: see
        ``ApplyResult.scope``); ``want`` asks for those keys whatever the watermarks say
        (``ApplyResult.wanted`` of the last payload, as it is). See :mod:`._repair`.
        """
        wanted = check_want(want)
        if digest_scope is not None and not isinstance(digest_scope, PeerScope):
            raise InvalidArgumentError("digest_scope must be a PeerScope or None")
        self._collect()
        with self._env.read() as txn:
            me = self._stamps.origin
            wm = self._watermarks(txn)
            table = rt.fingerprint(txn)
            if table is not None:  # the omission rule (_retired.py)
                wm = {o: c for o, c in wm.items()
                      if o == me or not c or c != rt.retired(txn, o)}
            wm = capped(wm, self.replica_id, txn)
            return Summary(
                self.replica_id, wm, stored_digest.state_root(txn),
                me=me if me is not None and me in wm else None,  # once this object minted
                digest=(digest_scope, scope_sums(txn, digest_scope)) if digest else None,
                want=wanted, revoked=self._revocations.held(txn), rt=table,
                rti=None if table is None else rt.sketch(txn)).pack()

    def state_digest(self) -> str:
        """Hex digest of the shareable state: equal exactly when that state is equal."""
        self._collect()
        with self._env.read() as txn:
            return stored_digest.state_root(txn).hex()

    # -- changes ----------------------------------------------------------------------

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = None,
                     peer: PeerScope | None = None) -> bytes:
        """The key states ``summary`` lacks, only those ``peer`` may see, in at most
        ``max_bytes`` (a single state larger than ``max_bytes`` is shipped alone, so the
        exchange always progresses): the keys it wants first, then the delta log; with
        room left, the repair listing of the buckets whose digests differ."""
        parsed = parse_summary(summary)
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes <= 0):
            raise bad("max_bytes must be a positive int")
        if peer is not None and not isinstance(peer, PeerScope):
            raise InvalidArgumentError("peer must be a PeerScope or None")
        if parsed.me is not None and parsed.me != self._stamps.origin:
            self._defer_to_origin(parsed.me, parsed.wm.get(parsed.me, 0))
        repair = parsed.digest is not None and parsed.digest[0] == normal(peer)
        if repair:
            self._collect()  # the peer's sums were taken after its own collection
        now = self._stamps.clock()
        self._retire_past(parsed)
        with self._env.read() as txn:
            # the peer's marks under the reading rule (_retired.py)
            peer_wm = rt.PeerMarks(txn, parsed.wm, parsed.rt, self._stamps.origin)
            # what we may claim of each origin beyond the peer's mark: our complete
            # watermark (implicit for a compacted retired origin) or one of a scope
            # covering the peer's, but (for any origin not our own) no further than the
            # events of it held here, so a false claim we took is never passed on
            own = own_counters(txn, self.replica_id)
            vouched = self._watermarks(txn, claims=True, peer=peer)
            whole: set[str] = set()  # held implicitly: claimed through F (see below)
            for origin in (parsed.wm if parsed.rt is not None else
                           (o for o, _ in rt.entries(txn, set(range(rt.BUCKETS))))):
                held = rt.implicit(txn, origin)
                if held > vouched.get(origin, 0):
                    vouched[origin] = held
                    whole.add(origin)
            claimable: dict[str, int] = {}
            for origin, counter in capped(vouched, self.replica_id, txn).items():
                # (a compacted retired origin is claimed through F, even past the latest
                # event of it held here: its later events are on keys gone or never
                # shared, and no claim could ever take a peer to F otherwise)
                if counter > peer_wm.get(origin, 0) and origin not in own \
                        and origin not in whole:
                    counter = min(counter, latest_counter(txn, origin))
                if counter > peer_wm.get(origin, 0):
                    claimable[origin] = counter
            retired = self._retired_for(txn, parsed,
                                        None if max_bytes is None else max_bytes // 2)
            base = len(Changes(self.replica_id, peer, (), dict.fromkeys(
                claimable, (MAX_COUNTER, MAX_COUNTER))).pack()) + 5
            size = base + sum(len(o.encode()) + _RETIRED_OVERHEAD for o in retired)
            revocations: list[bytes] = []  # first: the receiver admits them first
            for rev in self._revocations.missing(txn, parsed.revoked):
                cost = len(rev) + _STATE_OVERHEAD
                if max_bytes is not None and revocations and size + cost > max_bytes:
                    break
                revocations.append(rev)
                size += cost
            shipped: list[bytes] = []
            proofs: list[tuple[tuple[str, int, bytes], ...]] = []
            outbox = Outbox(txn)
            seen: set[bytes] = set()
            full = False
            unshipped: dict[str, int] = {}

            def take(key: bytes, *, whole: bool = False) -> bool:
                """Ship ``key`` if it belongs (without the timeline events the peer's
                watermarks show it holds, unless ``whole``); False when the budget is
                spent."""
                nonlocal size, full
                if key in seen:
                    return True
                skey = stored_digest.state_key(key.decode())
                raw = txn.get("state", skey)
                if raw is None:
                    seen.add(key)
                    return True
                state = decode(raw, check_canonical=False)
                h = state.header
                if not h.shareable or (peer is not None and not peer.allows(
                        h.app_id, h.user_id, h.agent_id, h.run_id)) \
                        or (h.expires_at is not None and h.expires_at <= now):
                    seen.add(key)
                    return True
                delta = state
                if state.events and not whole:
                    delta = unseen_by(state, peer_wm)
                    if delta is not state:
                        raw = encode(delta)
                signed = outbox.proofs(skey, delta)
                cost = len(raw) + _STATE_OVERHEAD + sum(len(p) + _PROOF_OVERHEAD + len(o)
                                                        for o, _, p in signed)
                cost += outbox.added_bytes()  # the credentials first named here
                if max_bytes is not None and (shipped or revocations) \
                        and size + cost > max_bytes:
                    outbox.withdraw()
                    full = True
                    return False
                seen.add(key)
                shipped.append(raw)
                proofs.append(signed)
                size += cost
                return True

            for wanted_key in parsed.want:  # repair: the whole state, whatever the marks say
                if not take(wanted_key.encode(), whole=True):
                    break
            for priority in (True, False):
                for origin in origins(txn, priority):
                    for counter, key in origin_entries(txn, priority, origin,
                                                       peer_wm.get(origin, 0) + 1):
                        if full or not take(key):
                            unshipped[origin] = min(unshipped.get(origin, counter), counter)
                            break
            hashes: list[tuple[str, bytes]] = []
            if repair and not full:
                assert parsed.digest is not None
                size += _HASHES_OVERHEAD
                for bucket in differing(scope_sums(txn, peer), parsed.digest[1]):
                    listing = bucket_listing(txn, bucket, peer)
                    if len(hashes) + len(listing) > MAX_HASHES:
                        if hashes:
                            break
                        listing = listing[:MAX_HASHES]
                    cost = sum(len(k.encode()) + _HASH_OVERHEAD for k, _ in listing)
                    if max_bytes is not None and (shipped or hashes or revocations) and \
                            size + cost > max_bytes:
                        break
                    hashes.extend(listing)
                    size += cost
        through: dict[str, tuple[int, int]] = {}
        for origin, counter in claimable.items():  # and below the first entry not shipped
            claim = min(counter, unshipped[origin] - 1) if origin in unshipped else counter
            if claim > peer_wm.get(origin, 0):
                through[origin] = (peer_wm.get(origin, 0), claim)
        return Changes(self.replica_id, peer, tuple(shipped), through, tuple(hashes),
                       tuple(proofs), outbox.credentials(), tuple(revocations),
                       retired or None).pack()

    @staticmethod
    def _retired_for(txn: Txn, parsed: Summary, budget: int | None) -> dict[str, int]:
        """The retirement entries to ship to the peer whose summary is ``parsed``, in at
        most ``budget`` bytes (the first bucket always) and MAX_RETIRED_PER_PAYLOAD
        entries: each entry whose origin the peer lists at or above its final counter
        (it would have left it out had it known the entry; not its own origin ``me``,
        which it always lists), then exactly the entries the peer lacks when the two
        difference sketches decode (``_retired.lacking``; those it decodes when the
        difference is too large to list whole, which shrinks it for the next exchange),
        else, for each fingerprint
        bucket that differs (``_retired.differing``), our newest entries of it when the
        peer's bucket is ours without exactly those (``_retired.missing_suffix``: a peer
        a few retirements behind), else the whole bucket."""
        listed, theirs, me = parsed.wm, parsed.rt, parsed.me
        mine = rt.fingerprint(txn)
        if mine is None:
            return {}
        out: dict[str, int] = {}
        size = 0

        def fits(batch: dict[str, int]) -> bool:
            """Add ``batch`` if it fits (the first one always, cut to the entry cap: a
            bucket a flood filled); False when the payload is full."""
            nonlocal size
            cost = sum(len(o.encode()) + _RETIRED_OVERHEAD for o in batch)
            if out and (len(out) + len(batch) > MAX_RETIRED_PER_PAYLOAD
                        or (budget is not None and size + cost > budget)):
                return False
            if len(batch) > MAX_RETIRED_PER_PAYLOAD:
                out.update(itertools.islice(batch.items(), MAX_RETIRED_PER_PAYLOAD))
                return False
            size += cost
            out.update(batch)
            return True

        for origin, counter in listed.items():
            final = rt.retired(txn, origin)
            if final and counter >= final and origin != me and not fits({origin: final}):
                return out
        lacking = rt.lacking(txn, mine, theirs, parsed.rti)
        if lacking is not None:  # whole, or in part: what the next exchange decodes
            for origin, final in lacking[0].items():
                if origin not in out and not fits({origin: final}):
                    break
            return out
        ours, peers = rt.split(mine), rt.split(theirs)
        whole: list[int] = []
        for b in rt.differing(mine, theirs):
            suffix = rt.missing_suffix(txn, b, ours[b], peers[b])
            if suffix is None:
                whole.append(b)
            elif not fits(suffix):
                return out
        if whole:  # one walk of the table for every whole bucket
            found: dict[int, dict[str, int]] = {b: {} for b in whole}
            for origin, final in rt.entries(txn, set(whole)):
                found[rt.bucket(origin)][origin] = final
            for b in whole:
                if not fits(found[b]):
                    break
        return out

    def _retire_past(self, parsed: Summary) -> None:
        """Retire, at its counter, each earlier incarnation of this directory that the
        peer's summary ``parsed`` shows it holds in full and that has been quiet for
        :data:`EARLIER_QUIET_MS` (before the payload is built, so the entry rides in it).
        A rare, small write."""
        quiet_before = self._stamps.clock() - EARLIER_QUIET_MS
        with self._env.read() as txn:
            marks = rt.PeerMarks(txn, parsed.wm, parsed.rt, self._stamps.origin)
            past = {o: c for o, c in own_counters(txn, self.replica_id).items()
                    if o != self._stamps.origin and rt.retired(txn, o) < c <= marks.get(o, 0)}
            past = {o: c for o, c in past.items()
                    if (latest_stamp(txn, o) or quiet_before) <= quiet_before}
        propose(self._env, past, self.replica_id)

    def _defer_to_origin(self, origin: str, counter: int) -> None:
        """The origin is the authority on its own counter (see _watermarks.py): lower our
        watermarks of ``origin`` that claim more than it has minted. A rare, small write.

        Not when a key here carries a later event of ``origin``: then the summary is
        older than what we hold (a push or a continuation is computed from the peer's
        last summary, and its newer events may reach us first by another path), not a
        lie, and lowering would only have those events shipped again."""
        with self._env.read() as txn:
            if Table(txn).shown(origin) <= counter or any(
                    next(origin_entries(txn, priority, origin, counter + 1), None)
                    for priority in (True, False)):
                return

        def lower(txn: Txn) -> dict[str, int]:
            table = Table(txn)
            table.lower(origin, counter)
            return table.lowered

        if self._env.write(lower):
            log.warning("replica %s: watermark of %s was above that origin's own counter"
                        " %d (a false claim); lowered", self.replica_id, origin, counter)

    # -- apply ------------------------------------------------------------------------

    def sync_apply(self, changes: bytes) -> ApplyResult:
        """Join a peer's changes: validated first, then applied in one transaction."""
        with gc_paused():  # only when single-threaded: see _gcpause.py
            return self._sync_apply(changes)

    def _sync_apply(self, changes: bytes) -> ApplyResult:
        wall = self._stamps.clock()
        parsed = read_changes(changes, wall=wall, max_drift_ms=self._stamps.max_drift_ms)
        states, through, newest = parsed.states, parsed.through, parsed.newest
        me = self._stamps.origin  # the current origin: only this object mints under it
        # verified outside the write lock; kept and trusted before any state is judged
        revs, bad_revs = self._revocations.admit(parsed.revocations, parsed.sender)

        def write(txn: Txn) -> ApplyResult:
            self._revocations.refresh(txn)
            kept = self._revocations.keep(txn, revs) if revs else []
            if newest is not None:  # the events keep their own stamps; the clock moves on
                self._stamps.hlc(txn).observe(newest, wall)
            changed: list[str] = []
            conflicts: list[str] = []
            fresh: list[NewKey] = []
            refused = list(parsed.refused)
            raised: dict[str, int] = {}
            over_table = 0
            if parsed.retired:  # first: the reading and omission rules use the table
                raised, over_table = rt.join(txn, parsed.retired,
                                             own_counters(txn, self.replica_id))
                if over_table:
                    refused.append(Refusal(None, "retired-cap", (
                        f"{over_table} retirement entries: the table is at its cap of"
                        f" {rt.MAX_RETIRED} origins")))
            table = Table(txn)
            caps = dict(parsed.caps)  # claims may not vouch for refused keys' events
            ctr = None if me is None else counter_key(me, self.replica_id)
            top = 0 if ctr is None else txn.counter(ctr)
            # an empty replica holds none of the (unique) keys: no lookup per key
            empty = txn.txn.stat(txn.dbs["state"])["entries"] == 0
            intake = Intake(txn, self._trust, parsed.proofs, parsed.creds, self._refusals)
            for raw, incoming in states:
                h = incoming.header
                key = h.key
                if h.expires_at is not None and h.expires_at <= wall:
                    continue
                skey = stored_digest.state_key(key)
                old_raw = None if empty else txn.get("state", skey)
                same = old_raw == raw  # the very bytes held here: the join changes nothing
                if same and self._trust is None and key not in parsed.proofs:
                    continue
                if old_raw is None and not incoming.forgotten:
                    # bulk path: a key new here keeps the validated bytes as they came
                    refusal, signed = intake.judge(incoming, None)
                    if refusal is not None:
                        refused.append(refusal)
                        cap(caps, intake.unproven(incoming, None))
                        continue
                    intake.keep_fresh(skey, incoming, signed)
                    if h.expires_at is None:  # (TTL keys: see _watermarks.py)
                        table.detect_lie(incoming.ctx, {}, me)
                    fresh.append((key, skey, raw, incoming))
                    changed.append(key)
                    if me is not None:
                        top = max(top, incoming.ctx.get(me, 0))
                    if len(incoming.body) > 1 and len(incoming.standing()) > 1:
                        conflicts.append(key)
                    continue
                try:
                    # the join and everything derived from it, pure, before any write:
                    # decode has validated what the join relies on, so this only fails on
                    # a bug (or a corrupt local state); that key alone is then refused
                    old = incoming if same else \
                        None if old_raw is None else decode(old_raw, check_canonical=False)
                    if old is not None and not old.header.shareable:
                        refused.append(Refusal(key, "private", "the key is private here"))
                        cap(caps, incoming.ctx)
                        continue
                    refusal, signed = intake.judge(incoming, old)
                    if refusal is not None:
                        refused.append(refusal)
                        cap(caps, intake.unproven(incoming, old))
                        continue
                    if old is None or same:  # (same: its proofs are still taken in)
                        new, new_raw = incoming, raw
                    else:
                        new = join(old, incoming)
                        new_raw = encode(new)
                    why = unstorable(new)
                    if why is not None:
                        raise DecodeError(why)
                except Exception as exc:  # any failure of the pure step refuses this key only
                    refused.append(Refusal(key, "join-failed", f"{type(exc).__name__}: {exc}"))
                    cap(caps, incoming.ctx)
                    continue
                if h.expires_at is None:
                    table.detect_lie(incoming.ctx, {} if old is None else old.ctx, me)
                intake.keep_joined(skey, new, signed)
                if store(txn, key, skey, old_raw, old, new, local=False, new_raw=new_raw):
                    changed.append(key)
                    self._stamps.raise_counter(txn, new.ctx)
                    if len(new.standing()) > 1:
                        conflicts.append(key)
            intake.finish()
            if fresh:
                store_new(txn, fresh, local=False)
                if ctr is not None and top > txn.counter(ctr):
                    txn.set_counter(ctr, top)
            accepted: dict[str, int] = {}
            over = 0
            # claims about the current origin are ignored (only this object mints under
            # it); an older origin of ours is held up to its counter here at least
            own = own_counters(txn, self.replica_id) if through else {}
            for origin, (base, counter) in ({} if parsed.blind else through).items():
                if origin == me:
                    continue
                counter = min(counter, caps.get(origin, counter))
                targets = table.claim_targets(origin, base, counter, parsed.scope,
                                              own.get(origin, 0))
                if not targets:
                    continue
                if not table.may_create(origin):
                    over += 1
                    continue
                for sid in targets:
                    table.raise_to(origin, counter, sid)
                accepted[origin] = counter
                rt.compact(txn, origin)
            if over:
                refused.append(Refusal(None, "claims-cap", (
                    f"{over} claims for origins this replica holds no key of: its watermark"
                    f" table is at its cap of {MAX_SUMMARY_ORIGINS} origins")))
            failed = len(refused) - len(parsed.refused) - (1 if over else 0) \
                - (1 if over_table else 0)
            return ApplyResult(applied=len(states) - failed, changed=tuple(changed),
                               conflicts=tuple(conflicts), through=accepted,
                               refused=(*refused, *bad_revs), lowered=dict(table.lowered),
                               scope=parsed.scope, revocations=len(kept), retired=raised)

        result = self._env.write(write)
        if parsed.hashes:  # compared after the commit, outside the write lock
            with self._env.read() as txn:
                result = replace(result, wanted=wanted(txn, parsed.hashes))
        return result

"""The three byte-level sync calls: ``sync_summary``, ``sync_changes``, ``sync_apply``.

Protocol (Scuttlebutt-style watermarks, van Renesse et al., "Efficient Reconciliation
and Flow Control for Anti-Entropy Protocols", 2008; full per-key states rather than
deltas, so any subset of keys may be shipped in any order):

* summary ``{"v": 1, "rid"[, "me"], "wm": {origin: counter}, "root": 32 bytes[,
  "buckets"]}``: ``wm[o] = n`` claims "I hold every shareable event of ``o`` up to ``n``
  that I may see". An origin is ``replica_id#incarnation`` (see :mod:`.incarnation`);
  ``me`` names the origin this object mints under, once it has minted, and its ``wm`` is
  its dot counter (claims by others about it are ignored); older origins minted in this
  directory (earlier processes, a restored backup's) show at least their counter and
  are raised by claims like any remote origin.
* changes ``{"v": 1, "rid", "scoped", "states": (key-state bytes, ...), "through": {o:
  (base, n)}}``: the full state of every shareable key, allowed for the peer, whose
  latest event of some origin ``o`` is beyond the peer's ``wm[o]``, found through the
  ``origin`` index and shipped priority first, then by (origin, counter); and
  ``through`` claims that let the receiver raise its watermarks past events it will
  never get (private keys, keys its scope does not allow, keys superseded by later
  events): ``n`` is the sender's own *complete* watermark of ``o``, or just below the
  first entry of ``o`` the payload had no room for.

Two rules keep a claim from vouching for events its receiver never got:

* **No gaps** (Scuttlebutt's "deltas in version order without gaps"): ``base`` is the
  watermark the payload was computed from; a receiver takes the claim only if it already
  holds ``o`` up to ``base``. A payload computed from a summary that assumed an earlier,
  lost payload (a stream of chunks) cannot skip what that payload carried.
* **Scoped claims stay scoped.** A replica keeps two watermarks per origin: complete
  (``wm:``: every shareable event) and scoped (``ws:``: every event it may see, raised
  by payloads the sender filtered with a ``PeerScope``, flagged ``scoped``). It claims
  only its complete watermark (and its own counter) to others, but shows the greater of
  the two in its summary. So a replica restricted to one user, relaying to an
  unrestricted one, never vouches for other users' events it was not allowed to hold (the
  simulations' scoped-ACL fleet found this); a restricted replica still advances past
  what its scope hides. (Assumes each replica's scope is the same on every peer.)
* In repair mode (the summary carries the 256 bucket sums of the digest) the keys of
  every bucket whose sum differs are shipped too: the fallback when watermarks cannot
  tell what is missing (a replica restored from a backup, a log entry lost).
* ``sync_apply`` validates the whole payload (structure, canonical key-state bytes,
  clock drift) before it opens a write transaction, then joins every state in one
  transaction: bad bytes raise and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from memmesh.crdt import ClockDriftError, DecodeError, Dot, Timestamp
from memmesh.crdt.codec import packb, unpackb
from memmesh.crdt.dot import base_replica, check_replica
from memmesh.crdt.limits import MAX_REPLICA_LEN

from . import digest, history
from .core import ReplicaCore
from .env import Txn
from .gcpause import gc_paused
from .incarnation import counter_key, own_counters
from .keystate import KIND_MEMORY, OPS, KeyState, decode, join
from .records import ApplyResult, PeerScope

__all__ = ["SyncOps"]

_WM = b"wm:"  # complete watermarks
_WS = b"ws:"  # scoped watermarks (see module doc)
_MAX_COUNTER = 2**63 - 1
_STATE_OVERHEAD = 5  # msgpack bin header of one shipped state, at most


def _bad(message: str) -> DecodeError:
    return DecodeError(f"invalid sync message: {message}")


def _counter_map(value: Any, what: str) -> dict[str, int]:
    if type(value) is not dict:
        raise _bad(f"{what} must be a map")
    out: dict[str, int] = {}
    for origin, counter in value.items():
        try:
            check_replica(origin)
        except ValueError:
            raise _bad(f"{what} has a bad replica id") from None
        if "\x00" in origin or type(counter) is not int or not 0 <= counter <= _MAX_COUNTER:
            raise _bad(f"{what} entries must be replica -> counter")
        out[origin] = counter
    return out


def _claim_map(value: Any) -> dict[str, tuple[int, int]]:
    if type(value) is not dict:
        raise _bad("through must be a map")
    out: dict[str, tuple[int, int]] = {}
    for origin, claim in value.items():
        if type(claim) is not tuple or len(claim) != 2:
            raise _bad("through entries must be replica -> (base, counter)")
        base, counter = _counter_map({origin: claim[0]}, "through"), \
            _counter_map({origin: claim[1]}, "through")
        if base[origin] >= counter[origin]:
            raise _bad("a through claim must move past its base")
        out[origin] = (base[origin], counter[origin])
    return out


def parse_summary(data: bytes) -> tuple[str, dict[str, int], bytes, tuple[bytes, ...] | None]:
    plain = unpackb(data)
    if type(plain) is not dict or plain.get("v") != 1:
        raise _bad("expected a version-1 summary map")
    if not set(plain) <= {"v", "rid", "me", "wm", "root", "buckets"}:
        raise _bad("unknown summary field")
    rid = plain.get("rid")
    if type(rid) is not str:
        raise _bad("rid must be a str")
    me = plain.get("me")
    if me is not None and (type(me) is not str or not len(me) <= MAX_REPLICA_LEN
                           or "\x00" in me or me == rid or base_replica(me) != rid):
        raise _bad("me must be an origin of the summary's rid")
    wm = _counter_map(plain.get("wm"), "wm")
    root = plain.get("root")
    if type(root) is not bytes or len(root) != 32:
        raise _bad("root must be 32 bytes")
    buckets = plain.get("buckets")
    if buckets is not None and (type(buckets) is not tuple or len(buckets) != digest.BUCKETS
                                or any(type(b) is not bytes or len(b) != 32 for b in buckets)):
        raise _bad("buckets must be 256 digests of 32 bytes")
    return rid, wm, root, buckets


def _origins(txn: Txn, prio: int) -> Iterator[str]:
    """The origins present in the ``origin`` index under ``prio`` (skip-scan)."""
    cur = txn.cursor("origin")
    seek = bytes((prio,))
    while cur.set_range(seek):
        raw = bytes(cur.key())
        if raw[0] != prio:
            return
        origin = raw[1:-9]
        yield origin.decode()
        seek = bytes((prio,)) + origin + b"\x01"


def _entries(txn: Txn, prio: int, origin: str, start: int) -> Iterator[tuple[int, bytes]]:
    prefix = bytes((prio,)) + origin.encode() + b"\x00"
    cur = txn.cursor("origin")
    if not cur.set_range(prefix + start.to_bytes(8, "big")):
        return
    for raw, key in cur:
        if not raw.startswith(prefix):
            return
        yield int.from_bytes(raw[-8:], "big"), bytes(key)


class SyncOps(ReplicaCore):
    """The sync primitives of a replica."""

    # -- summary ----------------------------------------------------------------------

    def _watermarks(self, txn: Txn, *, scoped: bool = True) -> dict[str, int]:
        """Complete watermarks, raised by the scoped ones when ``scoped`` (what a summary
        shows; claims to others use the complete ones only: see module doc)."""
        wm = {k[len(_WM):].decode(): int.from_bytes(v, "big") for k, v in txn.prefix("meta", _WM)}
        if scoped:
            for k, v in txn.prefix("meta", _WS):
                origin, counter = k[len(_WS):].decode(), int.from_bytes(v, "big")
                if counter > wm.get(origin, 0):
                    wm[origin] = counter
        # own origins (every incarnation minted here, legacy bare id included) at least at
        # their counter; the current one exactly (authoritative: claims about it are not
        # taken), older ones raised by claims like any remote origin
        for origin, counter in own_counters(txn, self.replica_id).items():
            if origin == self._origin or counter > wm.get(origin, 0):
                wm[origin] = counter
        return wm

    def sync_summary(self, *, buckets: bool = False) -> bytes:
        """What this replica holds, for a peer's ``sync_changes`` (see module doc)."""
        self.collect_expired()
        with self._env.read() as txn:
            sums = digest.bucket_sums(txn)
            plain: dict[str, Any] = {"v": 1, "rid": self.replica_id,
                                     "wm": self._watermarks(txn), "root": digest.root(sums)}
            me = self._origin
            if me is not None and me in plain["wm"]:  # this object has minted
                plain["me"] = me
        if buckets:
            plain["buckets"] = tuple(sums)
        return packb(plain)

    def state_digest(self) -> str:
        """Hex digest of the shareable state: equal exactly when that state is equal."""
        self.collect_expired()
        with self._env.read() as txn:
            return digest.root(digest.bucket_sums(txn)).hex()

    # -- changes ----------------------------------------------------------------------

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = None,
                     peer: PeerScope | None = None) -> bytes:
        """The key states ``summary`` lacks, only those ``peer`` may see, in at most
        ``max_bytes`` (a single state larger than ``max_bytes`` is shipped alone, so the
        exchange always progresses)."""
        _, peer_wm, _, peer_buckets = parse_summary(summary)
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes <= 0):
            raise _bad("max_bytes must be a positive int")
        now = self._clock()
        with self._env.read() as txn:
            my_wm = self._watermarks(txn, scoped=False)
            base = len(packb({"v": 1, "rid": self.replica_id, "scoped": True, "states": (),
                              "through": dict.fromkeys(my_wm, (_MAX_COUNTER, _MAX_COUNTER))})
                       ) + 5
            shipped: list[bytes] = []
            seen: set[bytes] = set()
            size = base
            full = False
            unshipped: dict[str, int] = {}

            def take(key: bytes) -> bool:
                """Ship ``key`` if it belongs; False when the budget is spent."""
                nonlocal size, full
                if key in seen:
                    return True
                raw = txn.get("state", digest.state_key(key.decode()))
                if raw is None:
                    seen.add(key)
                    return True
                state = decode(raw, check_canonical=False)
                h = state.header
                if not h.shareable or (peer is not None and not peer.allows(h.app_id, h.user_id)) \
                        or (h.expires_at is not None and h.expires_at <= now):
                    seen.add(key)
                    return True
                cost = len(raw) + _STATE_OVERHEAD
                if max_bytes is not None and shipped and size + cost > max_bytes:
                    full = True
                    return False
                seen.add(key)
                shipped.append(raw)
                size += cost
                return True

            for prio in (0, 1):
                for origin in _origins(txn, prio):
                    for counter, key in _entries(txn, prio, origin, peer_wm.get(origin, 0) + 1):
                        if full or not take(key):
                            unshipped[origin] = min(unshipped.get(origin, counter), counter)
                            break
            if peer_buckets is not None and not full:
                mine = digest.bucket_sums(txn)
                for bucket in range(digest.BUCKETS):
                    if mine[bucket] == peer_buckets[bucket] or full:
                        continue
                    for skey, _ in txn.prefix("state", bytes((bucket,))):
                        if not take(skey[1:]):
                            break
        through: dict[str, tuple[int, int]] = {}
        for origin, counter in my_wm.items():
            claim = min(counter, unshipped[origin] - 1) if origin in unshipped else counter
            if claim > peer_wm.get(origin, 0):
                through[origin] = (peer_wm.get(origin, 0), claim)
        scoped = peer is not None and (peer.apps is not None or peer.users is not None)
        return packb({"v": 1, "rid": self.replica_id, "scoped": scoped,
                      "states": tuple(shipped), "through": through})

    # -- apply ------------------------------------------------------------------------

    def _parse_changes(self, data: bytes) -> tuple[
            str, list[tuple[bytes, KeyState]], dict[str, tuple[int, int]], bool,
            Timestamp | None]:
        plain = unpackb(data)
        if type(plain) is not dict or plain.get("v") != 1 or \
                set(plain) != {"v", "rid", "scoped", "states", "through"}:
            raise _bad("expected a version-1 changes map")
        scoped = plain["scoped"]
        if type(scoped) is not bool:
            raise _bad("scoped must be a bool")
        rid, raws = plain["rid"], plain["states"]
        if type(rid) is not str:
            raise _bad("rid must be a str")
        try:
            check_replica(rid)
        except ValueError:
            raise _bad("bad rid") from None
        through = _claim_map(plain["through"])
        if type(raws) is not tuple or any(type(r) is not bytes for r in raws):
            raise _bad("states must be an array of byte strings")
        states: list[tuple[bytes, KeyState]] = []
        keys: set[str] = set()
        wall = self._clock()
        limit = wall + self.max_drift_ms
        newest_plain: tuple[int, int, str] | None = None
        for raw in raws:
            state = decode(raw)
            h = state.header
            if not h.shareable:
                raise _bad("a private key state cannot be received")
            if h.key in keys:
                raise _bad("a key appears twice")
            keys.add(h.key)
            # every hybrid timestamp the state carries (keystate.timestamps), as plain
            # (wall, logical, replica) tuples: no Timestamp object per version
            stamps = [] if h.created is None else \
                [(h.created.wall_ms, h.created.logical, h.created.replica)]
            if h.kind == KIND_MEMORY:
                stamps.extend((v[3], v[4], d.replica) for d, v in state.body.items())
            for stamp in stamps:
                if stamp[0] > limit:
                    raise ClockDriftError(
                        f"key {h.key} carries a timestamp {stamp[0] - wall} ms"
                        f" ahead of the local clock (max drift {self.max_drift_ms} ms)")
                if newest_plain is None or stamp > newest_plain:
                    newest_plain = stamp
            states.append((raw, state))
        newest = None if newest_plain is None else Timestamp(*newest_plain)
        return rid, states, through, scoped, newest

    def sync_apply(self, changes: bytes) -> ApplyResult:
        """Join a peer's changes: validated first, then applied in one transaction."""
        with gc_paused():  # a bulk call: see gcpause.py
            return self._sync_apply(changes)

    def _sync_apply(self, changes: bytes) -> ApplyResult:
        sender, states, through, scoped, newest = self._parse_changes(changes)
        wall = self._clock()
        me = self._origin  # the current origin: only this object mints under it

        def write(txn: Txn) -> ApplyResult:
            recorded = self._hlc(txn).observe(newest, wall) if newest is not None \
                else self._stamp(txn, wall)
            changed: list[str] = []
            conflicts: list[str] = []
            fresh: list[tuple[str, bytes, bytes, KeyState, list[bytes]]] = []
            detail = {"remote": True, "from": sender}
            ctr = None if me is None else counter_key(me, self.replica_id)
            top = 0 if ctr is None else txn.counter(ctr)
            # an empty replica holds none of the (unique) keys: no lookup per key
            empty = txn.txn.stat(txn.dbs["state"])["entries"] == 0
            for raw, incoming in states:
                h = incoming.header
                key = h.key
                if h.expires_at is not None and h.expires_at <= wall:
                    continue
                skey = digest.state_key(key)
                old_raw = None if empty else txn.get("state", skey)
                if old_raw is None and not incoming.forgotten:
                    # bulk path: a key new here keeps the validated bytes as they came
                    fresh.append((key, skey, raw, incoming,
                                  self._fresh_entries(incoming, recorded, detail)))
                    changed.append(key)
                    if me is not None:
                        top = max(top, incoming.ctx.get(me, 0))
                    if len(incoming.body) > 1 and len(incoming.standing()) > 1:
                        conflicts.append(key)
                    continue
                old = None if old_raw is None else decode(old_raw, check_canonical=False)
                if old is None:
                    new, new_raw = incoming, raw
                else:
                    new, new_raw = join(old, incoming), None
                events = self._merge_events(old, new, recorded, sender)
                if self._store(txn, key, skey, old_raw, old, new, local=False, events=events,
                               new_raw=new_raw):
                    changed.append(key)
                    self._raise_counter(txn, new.ctx)
                    if len(new.standing()) > 1:
                        conflicts.append(key)
            if fresh:
                self._store_new(txn, fresh, local=False)
                if ctr is not None and top > txn.counter(ctr):
                    txn.set_counter(ctr, top)
            accepted: dict[str, int] = {}
            # claims about the current origin are ignored (only this object mints under
            # it); an older origin of ours is held up to its counter here at least
            own = own_counters(txn, self.replica_id) if through else {}
            for origin, (base, counter) in through.items():
                if origin == me:
                    continue
                complete_key, scoped_key = _WM + origin.encode(), _WS + origin.encode()
                complete = max(txn.counter(complete_key), own.get(origin, 0))
                shown = max(complete, txn.counter(scoped_key))
                if not scoped and complete >= base:
                    if counter > complete:
                        txn.set_counter(complete_key, counter)
                        accepted[origin] = counter
                elif shown >= base and counter > shown:
                    txn.set_counter(scoped_key, counter)
                    accepted[origin] = counter
            return ApplyResult(applied=len(states), changed=tuple(changed),
                               conflicts=tuple(conflicts), through=accepted)

        return self._env.write(write)

    def _fresh_entries(self, new: KeyState, recorded: Timestamp,
                       detail: dict[str, Any]) -> list[bytes]:
        """The history entries of a key new here: what :meth:`_merge_events` gives for
        it (one per version), encoded directly."""
        if new.header.kind != 0:
            return []
        standing = [d for d, _ in new.standing()]
        return [history.version_entry(OPS[version[7]], dot, version, ctx=new.ctx,
                                      standing=standing,
                                      detail=self._event_detail(version, detail),
                                      recorded_at=recorded)
                for dot, version in sorted(new.body.items())]

    def _merge_events(self, old: KeyState | None, new: KeyState, recorded: Timestamp,
                      sender: str) -> list[dict[str, Any]]:
        """History entries for a remote merge: one per version learned, or a DELETE."""
        if new.header.kind != 0:
            return []
        detail = {"remote": True, "from": sender}
        if new.forgotten:
            if old is not None and old.forgotten:
                return []
            return [{"op": "FORGET", "actor": None, "replica": sender, "ts": recorded,
                     "dot": None, "text": None, "detail": detail, "recorded_at": recorded,
                     "version": None}]
        before: Mapping[Dot, Any] = {} if old is None else old.body
        events: list[dict[str, Any]] = []
        for dot, version in sorted(new.body.items()):
            if dot not in before:
                events.append(self._version_event(OPS[version[7]], dot, version, recorded,
                                                  detail))
        if not events and old is not None and set(before) - set(new.body):
            events.append({"op": "DELETE", "actor": None, "replica": sender, "ts": recorded,
                           "dot": None, "text": None, "detail": detail,
                           "recorded_at": recorded, "version": None})
        return events

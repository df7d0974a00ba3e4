"""The replica's write machinery shared by the memory model, sync and collection.

One rule holds for every change to a key: :meth:`ReplicaCore._store` writes the new
canonical bytes and, in the same transaction, keeps the digest, the indexes, the journal
and the history in step with it. Write functions run inside :meth:`Env.write` and read
everything they depend on (dot counter, hybrid clock, states) from the transaction, so
a replay after map growth is exact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from memmesh.crdt import HLC, Dot, InvalidArgumentError, Timestamp
from memmesh.crdt.codec import packb, unpackb
from memmesh.crdt.keystate import KeyState, VersionData

from . import digest, history, journal, layout
from .env import Env, Txn
from .errors import WritesFencedError
from .incarnation import counter_key, make_origin
from .indexes import add_index_rows, unstorable, update_indexes
from .keycodec import decode, encode

__all__ = ["ReplicaCore"]

log = logging.getLogger(__name__)

_HLC = b"hlc"


def _check_storable(state: KeyState, raw: bytes) -> None:
    """Refuse a local write whose index keys would not fit LMDB (a peer's state is
    checked when its payload is parsed), with a typed error instead of LMDB's."""
    why = unstorable(state, len(raw))
    if why is not None:
        raise InvalidArgumentError(why)


class ReplicaCore:
    """State and helpers shared by the parts of :class:`memmesh.storage.Replica`."""

    _env: Env
    replica_id: str
    max_drift_ms: int
    _clock: Callable[[], int]
    _new_id: Callable[[], str]
    _write_fence: str | None = None
    _origin: str | None = None  # this object's incarnation origin, drawn at its first write
    _incarnation_factory: Callable[[], str]
    _origin_lock: threading.Lock

    @property
    def clock(self) -> Callable[[], int]:
        """The wall clock (Unix milliseconds) this replica stamps writes and judges
        expiry by; injected with ``Replica.open(clock=...)`` in tests and simulations."""
        return self._clock

    def collect_expired(self, now_ms: int | None = None, *, limit: int = 10_000) -> int:
        """Remove expired memories (implemented by :class:`memmesh.storage.Replica`)."""
        raise NotImplementedError

    # -- the write fence ---------------------------------------------------------------

    @property
    def write_fence(self) -> str | None:
        """Why local writes are fenced off right now (None: they are not)."""
        return self._write_fence

    def fence_writes(self, reason: str) -> None:
        """Refuse every local write (``WritesFencedError`` carrying ``reason``, one line for
        an operator: what is wrong, what to do) until :meth:`unfence_writes`. Sync goes
        on. The gossip node fences a replica whose clock runs ahead of its peers'."""
        if type(reason) is not str or not reason.strip():
            raise InvalidArgumentError("a write fence needs a reason")
        self._write_fence = reason

    def unfence_writes(self) -> None:
        """Allow local writes again."""
        self._write_fence = None

    def _write_clock(self) -> int:
        """The wall clock for a local write, refused while writes are fenced."""
        fence = self._write_fence
        if fence is not None:
            raise WritesFencedError(fence)
        return self._clock()

    # -- incarnations -------------------------------------------------------------------

    @property
    def origin(self) -> str | None:
        """The origin this object mints its dots under, ``"<replica id>#<incarnation>"``
        (see :mod:`memmesh.storage.incarnation`); None until it first mints a dot, so a
        read-only open draws none."""
        return self._origin

    def _own_origin(self) -> str:
        """This object's origin, drawn from the incarnation factory on first use."""
        origin = self._origin
        if origin is None:
            with self._origin_lock:
                origin = self._origin
                if origin is None:
                    origin = self._origin = make_origin(self.replica_id,
                                                        self._incarnation_factory)
        return origin

    # -- clocks and dots --------------------------------------------------------------

    def _hlc(self, txn: Txn) -> HLC:
        """The hybrid clock, named after this object's origin once it has one (so two
        copies of a directory never stamp equal timestamps), else after the replica id
        (stamps of remote merges, which stay local)."""
        name = self._origin or self.replica_id
        clock: HLC | None = txn.scratch.get("hlc")
        if clock is None:
            raw = txn.get("meta", _HLC)
            last = None
            if raw is not None:
                wall, logical = unpackb(raw)  # type: ignore[misc]
                last = Timestamp(wall, logical, name)
            clock = txn.scratch["hlc"] = HLC(name, max_drift_ms=self.max_drift_ms, last=last)
            txn.pre_commit.append(self._save_hlc)
        elif clock.replica != name:  # the origin was drawn inside this transaction
            clock = txn.scratch["hlc"] = HLC(name, max_drift_ms=self.max_drift_ms,
                                             last=clock.last)
        return clock

    def _at_open(self) -> None:
        """What :meth:`Replica.open` checks once: the on-disk layout (upgraded if older,
        :mod:`.layout`) and the persisted hybrid clock."""
        if layout.upgrade(self._env):
            log.warning("replica %s: indexes rebuilt for storage layout %d", self.replica_id,
                        layout.LAYOUT)
        self._restart_clock_if_ahead()

    def _restart_clock_if_ahead(self) -> None:
        """At open: a persisted hybrid clock more than ``max_drift_ms`` ahead of the wall
        clock (the machine's clock was ahead and has been fixed, or was set back) would
        keep stamping writes that every peer refuses; restart it from the wall clock.

        The cost, said in docs/faulty-members.md: keys written while the clock was ahead
        keep their future stamps, so under "lww" they win over newer writes until real
        time passes them, and ``as_of``/history recorded times step back once.
        """
        wall = self._clock()

        def restart(txn: Txn) -> tuple[int, int] | None:
            raw = txn.get("meta", _HLC)
            if raw is None:
                return None
            last_wall, last_logical = unpackb(raw)  # type: ignore[misc]
            if last_wall <= wall + self.max_drift_ms:
                return None
            txn.delete("meta", _HLC)
            return last_wall, last_logical

        with self._env.read() as txn:
            raw = txn.get("meta", _HLC)
        if raw is None or unpackb(raw)[0] <= wall + self.max_drift_ms:  # type: ignore[index]
            return
        restarted = self._env.write(restart)
        if restarted is not None:
            log.warning("replica %s: its hybrid clock was %d ms ahead of the wall clock"
                        " (more than max_drift_ms=%d); restarted from the wall clock so new"
                        " writes are accepted by peers", self.replica_id,
                        restarted[0] - wall, self.max_drift_ms)

    @staticmethod
    def _save_hlc(txn: Txn) -> None:
        clock: HLC = txn.scratch["hlc"]
        if clock.last is not None:
            txn.put("meta", _HLC, packb((clock.last.wall_ms, clock.last.logical)))

    def _now(self, txn: Txn, wall_ms: int) -> Timestamp:
        """A fresh hybrid timestamp for a local write that mints a dot: drawn under this
        object's origin (drawing it first if need be), monotonic across processes sharing
        the path."""
        self._own_origin()
        return self._stamp(txn, wall_ms)

    def _stamp(self, txn: Txn, wall_ms: int) -> Timestamp:
        """A fresh hybrid timestamp for what mints nothing (a NOOP, a remote merge): it
        draws no incarnation."""
        return self._hlc(txn).now(wall_ms)

    def _mint(self, txn: Txn, ctx: Mapping[str, int]) -> Dot:
        """A fresh dot of this object's origin, new to the key whose context is ``ctx``
        (one counter per origin for all keys: see :mod:`memmesh.crdt.keystate`)."""
        me = self._own_origin()
        name = counter_key(me, self.replica_id)
        counter = max(txn.counter(name), ctx.get(me, 0)) + 1
        txn.set_counter(name, counter)
        return Dot(me, counter)

    def _raise_counter(self, txn: Txn, ctx: dict[str, int]) -> None:
        """Never reuse a dot of our origin that came back from a peer. Only the current
        origin mints, so only its counter is raised: raising an older origin's counter
        from one received key would claim (in summaries) its events on keys not received
        yet; those watermarks move by claims, like any remote origin's."""
        me = self._origin
        if me is None:
            return
        mine = ctx.get(me, 0)
        if mine:
            name = counter_key(me, self.replica_id)
            if mine > txn.counter(name):
                txn.set_counter(name, mine)

    # -- reading states ---------------------------------------------------------------

    @staticmethod
    def _load(txn: Txn, key: str) -> tuple[bytes, bytes | None, KeyState | None]:
        skey = digest.state_key(key)
        raw = txn.get("state", skey)
        if raw is None:
            return skey, None, None
        return skey, raw, decode(raw, check_canonical=False)

    # -- the one write path -------------------------------------------------------------

    def _store(self, txn: Txn, key: str, skey: bytes, old_raw: bytes | None,
               old: KeyState | None, new: KeyState, *, local: bool,
               events: list[dict[str, Any]], new_raw: bytes | None = None) -> bool:
        """Replace ``old`` by ``new`` with every derived structure; False if unchanged."""
        raw = encode(new) if new_raw is None else new_raw
        if old is None and not new.forgotten:
            self._store_new(txn, [(key, skey, raw, new, self._entries(new, events))],
                            local=local)
            return True
        if local:
            _check_storable(new, raw)
        if raw == old_raw:
            return False
        txn.put("state", skey, raw)
        digest.note_change(txn, skey,
                           old_raw if old is not None and old.header.shareable else None,
                           raw if new.header.shareable else None)
        update_indexes(txn, key, old, new)
        journal.append(txn, key, local=local, priority=new.header.priority)
        if new.forgotten and not (old is not None and old.forgotten):
            history.purge(txn, key)
        history.record_many(txn, [(key, e) for e in self._entries(new, events)])
        return True

    @staticmethod
    def _entries(new: KeyState, events: list[dict[str, Any]]) -> list[bytes]:
        """The history bytes of ``events`` (each closed over the key's new state)."""
        if not events:
            return []
        standing = [d for d, _ in new.standing()]
        return [history.entry(ctx=new.ctx, standing=standing, **event) for event in events]

    def _store_new(self, txn: Txn, items: list[tuple[str, bytes, bytes, KeyState, list[bytes]]],
                   *, local: bool) -> None:
        """Store keys absent here, not forgotten: ``(key, state key, canonical bytes,
        state, history entries)`` each. The same records as :meth:`_store` writes for
        them, the index, journal and history rows deferred (Txn.defer_rows) so that a
        batch of many adds writes each sub-database with one cursor call."""
        rows: dict[str, list[tuple[bytes, bytes]]] = {
            "state": [], "scope": [], "expiry": [], "conflict": [], "origin": []}
        changes: list[tuple[str, bool, bool]] = []
        histories: list[tuple[str, bytes]] = []
        shared: list[tuple[bytes, bytes]] = []
        for key, skey, raw, state, entries in items:
            if local:
                _check_storable(state, raw)
            rows["state"].append((skey, raw))
            if state.header.shareable:
                shared.append((skey, raw))
            add_index_rows(key, state, rows)
            changes.append((key, local, state.header.priority))
            histories.extend((key, e) for e in entries)
        txn.put_rows("state", rows.pop("state"))  # read raw (txn.txn.stat): never deferred
        for db, db_rows in rows.items():
            txn.defer_rows(db, db_rows)
        digest.note_added(txn, shared)
        journal.append_many(txn, changes)
        history.record_many(txn, histories)

    def _remove(self, txn: Txn, key: str, skey: bytes, old_raw: bytes, old: KeyState) -> None:
        """Drop a key entirely (TTL collection): state, digest, indexes, history."""
        txn.delete("state", skey)
        digest.note_change(txn, skey, old_raw if old.header.shareable else None, None)
        update_indexes(txn, key, old, None)
        history.purge(txn, key)
        journal.append(txn, key, local=True, priority=old.header.priority)

    # -- history event helpers ------------------------------------------------------

    @staticmethod
    def _event_detail(version: VersionData, detail: dict[str, Any]) -> dict[str, Any]:
        """``detail`` of a version's event: a RESOLVE names its resolver, on the replica
        that wrote it and on every replica that merges it."""
        if version.resolver is not None and "resolver" not in detail:
            return {**detail, "resolver": version.resolver}
        return detail

    def _version_event(self, op: str, dot: Dot, version: VersionData, recorded_at: Timestamp,
                       detail: dict[str, Any]) -> dict[str, Any]:
        """A history event for ``version``."""
        return {"op": op, "actor": version.actor, "replica": dot.replica,
                "ts": version.stamp(dot), "dot": dot,
                "text": version.text, "detail": self._event_detail(version, detail),
                "recorded_at": recorded_at, "version": version}

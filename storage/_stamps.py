"""Who writes and when: a replica object's origin, its hybrid clock, its dots and its
write fence.

Dots are minted under the object's origin ``replica_id#incarnation`` (drawn at its first
write: :mod:`._incarnation`) from one counter per origin shared by all keys; hybrid
timestamps (Kulkarni et al. 2014) run under the origin once it exists, so two copies
of one directory never stamp equal timestamps. Everything is read from and written to
the transaction, so a replayed write (:mod:`._env`) mints the same dots.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from memmesh.crdt import HLC, Dot, InvalidArgumentError, Timestamp, packb, unpackb

from ._env import Env, Txn
from ._errors import WritesFencedError
from ._incarnation import counter_key, make_origin

__all__ = ["Stamps"]

log = logging.getLogger(__name__)

_HLC = b"hlc"


def _save_hlc(txn: Txn) -> None:
    clock: HLC = txn.scratch["hlc"]
    if clock.last is not None:
        txn.put("meta", _HLC, packb((clock.last.wall_ms, clock.last.logical)))


def _stored_wall(raw: bytes) -> int:
    wall: int = unpackb(raw)[0]  # type: ignore[index, unused-ignore]
    return wall


class Stamps:
    """The identity and clocks of one ``Replica`` object (see module doc)."""

    def __init__(self, replica_id: str, *, clock: Callable[[], int], max_drift_ms: int,
                 incarnation_factory: Callable[[], str]) -> None:
        self.replica_id = replica_id
        self.clock = clock
        self.max_drift_ms = max_drift_ms
        self._incarnation_factory = incarnation_factory
        self._origin: str | None = None
        self._origin_lock = threading.Lock()
        self._fence: str | None = None

    # -- the origin ----------------------------------------------------------------

    @property
    def origin(self) -> str | None:
        """The origin this object mints under; None until it first mints a dot."""
        return self._origin

    def own_origin(self) -> str:
        """This object's origin, drawn from the incarnation factory on first use."""
        origin = self._origin
        if origin is None:
            with self._origin_lock:
                origin = self._origin
                if origin is None:
                    origin = self._origin = make_origin(self.replica_id,
                                                        self._incarnation_factory)
        return origin

    # -- the write fence -------------------------------------------------------------

    @property
    def write_fence(self) -> str | None:
        return self._fence

    def fence(self, reason: str) -> None:
        if type(reason) is not str or not reason.strip():
            raise InvalidArgumentError("a write fence needs a reason")
        self._fence = reason

    def unfence(self) -> None:
        self._fence = None

    def write_clock(self) -> int:
        """The wall clock for a local write, refused while writes are fenced."""
        fence = self._fence
        if fence is not None:
            raise WritesFencedError(fence)
        return self.clock()

    # -- hybrid clock and dots ---------------------------------------------------------

    def hlc(self, txn: Txn) -> HLC:
        """The hybrid clock, named after this object's origin once it has one, else after
        the replica id (stamps of remote merges, which stay local)."""
        name = self._origin or self.replica_id
        clock: HLC | None = txn.scratch.get("hlc")
        if clock is None:
            raw = txn.get("meta", _HLC)
            last = None
            if raw is not None:
                wall, logical = unpackb(raw)  # type: ignore[misc, unused-ignore]
                last = Timestamp(wall, logical, name)
            clock = txn.scratch["hlc"] = HLC(name, max_drift_ms=self.max_drift_ms, last=last)
            txn.pre_commit.append(_save_hlc)
        elif clock.replica != name:  # the origin was drawn inside this transaction
            clock = txn.scratch["hlc"] = HLC(name, max_drift_ms=self.max_drift_ms,
                                             last=clock.last)
        return clock

    def now(self, txn: Txn, wall_ms: int) -> Timestamp:
        """A fresh hybrid timestamp for a local write that mints a dot (drawing the
        origin first if need be), monotonic across processes sharing the path."""
        self.own_origin()
        return self.hlc(txn).now(wall_ms)

    def stamp(self, txn: Txn, wall_ms: int) -> Timestamp:
        """A fresh hybrid timestamp for what mints nothing (a NOOP, a remote merge)."""
        return self.hlc(txn).now(wall_ms)

    def mint(self, txn: Txn, ctx: Mapping[str, int]) -> Dot:
        """A fresh dot of this object's origin, new to the key whose context is ``ctx``."""
        me = self.own_origin()
        name = counter_key(me, self.replica_id)
        counter = max(txn.counter(name), ctx.get(me, 0)) + 1
        txn.set_counter(name, counter)
        return Dot(me, counter)

    def raise_counter(self, txn: Txn, ctx: Mapping[str, int]) -> None:
        """Never reuse a dot of our origin that came back from a peer. Only the current
        origin mints, so only its counter is raised: raising an older origin's counter
        from one received key would claim (in summaries) its events on keys not
        received yet."""
        me = self._origin
        if me is None:
            return
        mine = ctx.get(me, 0)
        if mine:
            name = counter_key(me, self.replica_id)
            if mine > txn.counter(name):
                txn.set_counter(name, mine)

    def restart_if_ahead(self, env: Env) -> None:
        """At open: a persisted hybrid clock more than ``max_drift_ms`` ahead of the wall
        clock (the machine's clock was ahead and has been fixed) would keep stamping
        writes every peer refuses; restart it from the wall clock (the cost is in
        docs/faulty-members.md, "Clocks")."""
        wall = self.clock()

        def restart(txn: Txn) -> int | None:
            raw = txn.get("meta", _HLC)
            if raw is None or _stored_wall(raw) <= wall + self.max_drift_ms:
                return None
            txn.delete("meta", _HLC)
            return _stored_wall(raw)

        with env.read() as txn:
            raw = txn.get("meta", _HLC)
        if raw is None or _stored_wall(raw) <= wall + self.max_drift_ms:
            return
        restarted = env.write(restart)
        if restarted is not None:
            log.warning("replica %s: its hybrid clock was %d ms ahead of the wall clock"
                        " (more than max_drift_ms=%d); restarted from the wall clock so new"
                        " writes are accepted by peers", self.replica_id,
                        restarted - wall, self.max_drift_ms)

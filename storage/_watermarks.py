"""The watermark table: how far this replica holds each origin, and why a claim cannot
lie for long.

``meta`` holds a complete watermark per origin, ``wm:<origin>`` (every shareable event),
and scope-qualified ones, ``wq:<scope id><origin>`` (every shareable event inside that
scope: the scope a peer said it filtered its payload with, registered under
``sq:<scope id>``, at most :data:`MAX_WATERMARK_SCOPES` scopes); :mod:`._sync` raises
them from claims, and claims onward what it may (:func:`vouchable`: the complete marks,
and a scope's marks to a peer whose scope lies inside it, ``PeerScope.covers``). Issue
17 qualified them; the older unqualified ``ws:<origin>`` rows are ignored (a lower
watermark is always safe: the peer ships those events again). Three rules bound what a
peer can do to them
(docs/faulty-members.md, "Lying claims and digest repair"):

* a bounded table: at :data:`MAX_SUMMARY_ORIGINS` entries, claims for origins held by
  no key are refused, and a summary names at most that many (:func:`capped`);
* a lie detector (:meth:`Table.detect_lie`): a state carrying an event a watermark
  claimed proves it false; keys with a TTL are not judged (clocks expire them unevenly);
* the origin is the authority on its own counter (a summary's ``me``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping

from memmesh.crdt import DecodeError, base_replica, packb, unpackb

from ._env import Txn
from ._indexes import holds_origin, latest_counter, origins
from ._retired import RT, SQ, WM, WQ, implicit
from .wire import PeerScope, parse_scope, scope_plain

__all__ = ["MAX_SUMMARY_ORIGINS", "MAX_WATERMARK_SCOPES", "SID_LEN", "SQ", "WM", "WQ", "Table",
           "capped", "marks", "scope_id", "vouchable"]

#: Most origins a summary names, and most watermark entries claims may create for
#: origins this replica holds no key of.
MAX_SUMMARY_ORIGINS = 16384

#: Most scopes a replica keeps qualified watermarks for (a claim under another scope is
#: not taken: its events are shipped again instead).
MAX_WATERMARK_SCOPES = 16

SID_LEN = 8  # bytes of a scope id


def scope_id(scope: PeerScope) -> bytes:
    """The 8-byte id of a (restricted) scope: a hash of its canonical wire form."""
    return hashlib.sha256(packb(scope_plain(scope))).digest()[:SID_LEN]


def registered(txn: Txn) -> dict[bytes, PeerScope]:
    """The scopes this replica keeps qualified watermarks for, by id."""
    out: dict[bytes, PeerScope] = {}
    for k, v in txn.prefix("meta", SQ):
        try:
            scope = parse_scope(unpackb(v))
        except DecodeError:  # unreadable: its marks are never used
            continue
        if scope is not None:
            out[k[len(SQ):]] = scope
    return out


def marks(txn: Txn, prefix: bytes) -> dict[str, int]:
    """The watermarks stored under ``prefix`` (``WM``, or ``WQ`` + a scope id)."""
    return {k[len(prefix):].decode(): int.from_bytes(v, "big")
            for k, v in txn.prefix("meta", prefix)}


def vouchable(txn: Txn, peer: PeerScope | None) -> dict[str, int]:
    """What this replica may claim to a peer of scope ``peer`` (None: every key), per
    origin: its complete watermark, raised by the marks of each scope that covers
    ``peer`` (events inside that scope are held up to the mark, so those inside
    ``peer`` are too)."""
    wm = marks(txn, WM)
    if peer is None:
        return wm
    for sid, scope in registered(txn).items():
        if scope.covers(peer):
            for origin, counter in marks(txn, WQ + sid).items():
                if counter > wm.get(origin, 0):
                    wm[origin] = counter
    return wm


def capped(wm: Mapping[str, int], replica_id: str, txn: Txn | None = None
           ) -> dict[str, int]:
    """``wm`` cut to :data:`MAX_SUMMARY_ORIGINS` entries: this replica's own origins
    first, then the origins of keys held here, then by descending counter (then
    origin); ``wm`` itself when it is small enough.  (Counters alone would let claims
    about made-up origins with high counters push every real origin out: the peer would
    then be shipped the same keys again and again.)"""
    if len(wm) <= MAX_SUMMARY_ORIGINS:
        return dict(wm)
    held = set() if txn is None else \
        {origin for priority in (True, False) for origin in origins(txn, priority)}
    ranked = sorted(wm.items(), key=lambda item: (base_replica(item[0]) != replica_id,
                                                  item[0] not in held, -item[1], item[0]))
    return dict(ranked[:MAX_SUMMARY_ORIGINS])


class Table:
    """The watermark table inside one write transaction (reads are cached by the Txn)."""

    __slots__ = ("_blank", "_scopes", "_shown", "_size", "lowered", "txn")

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        self._size: int | None = None  # origins with an entry, counted on first need
        self._blank: bool | None = None  # no watermark at all (a new replica)
        self._scopes: dict[bytes, PeerScope] | None = None  # registered, read on first need
        self._shown: dict[str, int] = {}
        self.lowered: dict[str, int] = {}  # origin -> the value the lie detector set

    def scopes(self) -> dict[bytes, PeerScope]:
        if self._scopes is None:
            self._scopes = registered(self.txn)
        return self._scopes

    def _names(self, origin: str) -> list[bytes]:
        """The meta names of every watermark of ``origin``: complete, then qualified."""
        o = origin.encode()
        return [WM + o, *(WQ + sid + o for sid in self.scopes())]

    def complete(self, origin: str) -> int:
        """The complete mark of ``origin``: its ``wm:`` row, or, for a retired origin
        whose rows were compacted, its final counter (``_retired.implicit``)."""
        return self.txn.counter(WM + origin.encode()) or implicit(self.txn, origin)

    def held(self, origin: str, scope: PeerScope | None) -> int:
        """How far every event of ``origin`` inside ``scope`` (None: every shareable
        one) is held: the complete mark, raised by the marks of scopes covering it."""
        value = self.complete(origin)
        if scope is not None:
            o = origin.encode()
            for sid, mine in self.scopes().items():
                if mine.covers(scope):
                    value = max(value, self.txn.counter(WQ + sid + o))
        return value

    def shown(self, origin: str) -> int:
        """What a summary shows for ``origin``: the greatest of its watermarks."""
        value = self._shown.get(origin)
        if value is None:
            names = self._names(origin)
            value = self._shown[origin] = max(
                self.complete(origin), max((self.txn.counter(n) for n in names[1:]), default=0))
        return value

    def qualify(self, scope: PeerScope) -> bytes | None:
        """The id ``scope``'s marks are kept under, registering it if there is room
        (None: :data:`MAX_WATERMARK_SCOPES` others are registered)."""
        sid = scope_id(scope)
        scopes = self.scopes()
        if sid not in scopes:
            if len(scopes) >= MAX_WATERMARK_SCOPES:
                return None
            self.txn.put("meta", SQ + sid, packb(scope_plain(scope)))
            scopes[sid] = scope
        return sid

    def may_create(self, origin: str) -> bool:
        """Whether a claim may raise ``origin`` (see the bounded-table rule)."""
        if self.shown(origin):
            return True
        if self._size is None:
            values = {k: int.from_bytes(v, "big") for prefix in (WM, WQ)
                      for k, v in self.txn.prefix("meta", prefix)}
            values.update((k, v) for k, v in self.txn.counters.items() if k[:3] in (WM, WQ))
            self._size = len({k[3:] if k[:3] == WM else k[3 + SID_LEN:]
                              for k, v in values.items() if v})
        return self._size < MAX_SUMMARY_ORIGINS or holds_origin(self.txn, origin)

    def raise_to(self, origin: str, counter: int, sid: bytes | None = None) -> None:
        """Raise the complete mark of ``origin`` (``sid`` None) or the one qualified by
        the registered scope ``sid`` to ``counter``."""
        self._materialize(origin)
        if self._size is not None and not self.shown(origin):
            self._size += 1
        self._blank = False
        self.txn.set_counter((WM if sid is None else WQ + sid) + origin.encode(), counter)
        self._shown.pop(origin, None)

    def claim_targets(self, origin: str, base: int, counter: int,
                      scope: PeerScope | None, own: int = 0) -> list[bytes | None]:
        """The watermarks a gap-free claim ``(base, counter]`` of ``origin`` raises,
        from a payload filtered with ``scope`` (None: the complete mark; else an id of
        :meth:`qualify`); ``own``: this replica's own counter of ``origin``.

        The claim holds inside ``scope`` when we hold ``scope``'s events up to ``base``;
        else (the sender skipped what our summary showed of another scope) it still
        holds inside each registered scope within ``scope`` that we hold up to
        ``base``."""
        def held(inner: PeerScope | None) -> int:
            return max(self.held(origin, inner), own)

        reach = held(scope)
        if reach >= base:
            if counter <= reach:
                return []
            if scope is None:
                return [None]
            sid = self.qualify(scope)
            return [] if sid is None else [sid]
        return [sid for sid, inner in self.scopes().items()
                if (scope is None or scope.covers(inner))
                and counter > held(inner) >= base]

    def _materialize(self, origin: str) -> None:
        """Give a compacted retired origin its ``wm:`` row back (at its final counter)
        before a mark of it moves."""
        held = implicit(self.txn, origin)
        if held:
            self.txn.set_counter(WM + origin.encode(), held)

    def lower(self, origin: str, counter: int, *, claiming: int = 0) -> None:
        """Lower to ``counter`` each watermark of ``origin`` that is above it and at
        least ``claiming``."""
        self._materialize(origin)
        for name in self._names(origin):
            value = self.txn.counter(name)
            if value > counter and value >= claiming:
                self.txn.set_counter(name, counter)
                self.lowered[origin] = counter
        self._shown.pop(origin, None)

    def detect_lie(self, ctx: Mapping[str, int], held: Mapping[str, int],
                   me: str | None) -> None:
        """The lie detector (docs/faulty-members.md) for a received state with context
        ``ctx`` of a key held here with context ``held`` (empty when new here): each
        watermark that claimed the event is lowered (an honest one below it is kept), to
        the latest event of that origin held here before the one proved missing."""
        if self._blank is None:
            self._blank = not any(True for prefix in (WM, WQ, RT)
                                  for _ in itertools.islice(self.txn.prefix("meta", prefix), 1))
        if self._blank:  # nothing claimed yet, so nothing can be a lie
            return
        for origin, counter in ctx.items():
            have = held.get(origin, 0)
            if counter > have and origin != me and self.shown(origin) >= counter:
                self.lower(origin, max(have, latest_counter(self.txn, origin, counter)),
                           claiming=counter)

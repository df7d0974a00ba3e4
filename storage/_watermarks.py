"""The watermark table: how far this replica holds each origin, and why a claim cannot
lie for long.

``meta`` holds two counters per origin: ``wm:<origin>`` (complete: every shareable
event) and ``ws:<origin>`` (scoped: every event this replica may see); :mod:`._sync`
raises them from claims. Three rules bound what a peer can do to them
(docs/faulty-members.md, "Lying claims and digest repair"):

* a bounded table: at :data:`MAX_SUMMARY_ORIGINS` entries, claims for origins held by
  no key are refused, and a summary names at most that many (:func:`capped`);
* a lie detector (:meth:`Table.detect_lie`): a state carrying an event a watermark
  claimed proves it false; keys with a TTL are not judged (clocks expire them unevenly);
* the origin is the authority on its own counter (a summary's ``me``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from memmesh.crdt import base_replica

from ._env import Txn
from ._indexes import holds_origin, latest_counter, origins

__all__ = ["MAX_SUMMARY_ORIGINS", "WM", "WS", "Table", "capped"]

#: Most origins a summary names, and most watermark entries claims may create for
#: origins this replica holds no key of.
MAX_SUMMARY_ORIGINS = 16384

WM = b"wm:"  # complete watermarks
WS = b"ws:"  # scoped watermarks


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

    __slots__ = ("_blank", "_shown", "_size", "lowered", "txn")

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        self._size: int | None = None  # origins with an entry, counted on first need
        self._blank: bool | None = None  # no watermark at all (a new replica)
        self._shown: dict[str, int] = {}
        self.lowered: dict[str, int] = {}  # origin -> the value the lie detector set

    def complete(self, origin: str) -> int:
        return self.txn.counter(WM + origin.encode())

    def shown(self, origin: str) -> int:
        """What a summary shows for ``origin``: the greater of the two watermarks."""
        value = self._shown.get(origin)
        if value is None:
            value = self._shown[origin] = max(self.complete(origin),
                                              self.txn.counter(WS + origin.encode()))
        return value

    def may_create(self, origin: str) -> bool:
        """Whether a claim may raise ``origin`` (see the bounded-table rule)."""
        if self.shown(origin):
            return True
        if self._size is None:
            values = {k: int.from_bytes(v, "big") for prefix in (WM, WS)
                      for k, v in self.txn.prefix("meta", prefix)}
            values.update((k, v) for k, v in self.txn.counters.items() if k[:3] in (WM, WS))
            self._size = len({k[3:] for k, v in values.items() if v})
        return self._size < MAX_SUMMARY_ORIGINS or holds_origin(self.txn, origin)

    def raise_to(self, origin: str, counter: int, *, scoped: bool) -> None:
        if self._size is not None and not self.shown(origin):
            self._size += 1
        self._blank = False
        self.txn.set_counter((WS if scoped else WM) + origin.encode(), counter)
        self._shown.pop(origin, None)

    def lower(self, origin: str, counter: int, *, claiming: int = 0) -> None:
        """Lower to ``counter`` each watermark of ``origin`` that is above it and at
        least ``claiming``."""
        for prefix in (WM, WS):
            name = prefix + origin.encode()
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
            self._blank = not any(True for prefix in (WM, WS)
                                  for _ in itertools.islice(self.txn.prefix("meta", prefix), 1))
        if self._blank:  # nothing claimed yet, so nothing can be a lie
            return
        for origin, counter in ctx.items():
            have = held.get(origin, 0)
            if counter > have and origin != me and self.shown(origin) >= counter:
                self.lower(origin, max(have, latest_counter(self.txn, origin, counter)),
                           claiming=counter)

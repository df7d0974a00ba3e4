"""The retirement table: origins that will mint no more, with their final counters, so
summaries and watermark rows stop naming them once this replica holds them in full.

Modelled on Akka Distributed Data's pruning of removed nodes ("CRDT Garbage",
``RemovedNodePruning``), limited to the metadata of anti-entropy (docs/internals.md,
"Retired origins"): ``meta`` keeps ``rt:<origin>`` -> F, a grow-only max-map CRDT
(entries only move up), at most :data:`MAX_RETIRED` origins. Two rules use it:

* *omission* (a summary's sender): origin O is left out of ``wm`` iff the table holds O
  at F and the summary would show exactly F. Once the complete mark of O is F as well,
  its ``wm:``/``wq:`` rows are deleted (:func:`compact`); the mark is then *implicit*:
  an origin in the table with no ``wm:`` row is held through F (:func:`implicit`). The
  invariant that makes this sound: whenever an entry is created or raised, an origin
  without a ``wm:`` row gets one at what it held before (:func:`join`), so an entry
  learnt from a peer never vouches for events this replica lacks.
* *reading* (a sender of changes): an origin absent from a peer's ``wm`` counts as held
  through our F when the peer's summary carries a table fingerprint, else as 0.

The table travels by a constant-size fingerprint in summaries (:data:`BUCKETS` buckets of
``crc32(origin)``, each a 64-bit sum of entry hashes and an entry count, kept
incrementally in ``rs:<bucket>``) and by the entries of differing buckets in changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from . import _sketch
from ._env import Txn
from ._indexes import latest_counter
from .wire import RETIRED_BUCKET_BYTES, RETIRED_BUCKETS, retired_bucket, retired_term

__all__ = [
    "MAX_RETIRED",
    "RT",
    "SQ",
    "WM",
    "WQ",
    "PeerMarks",
    "compact",
    "differing",
    "entries",
    "fingerprint",
    "has_table",
    "implicit",
    "join",
    "retired",
    "split",
    "term",
]

#: Most origins the table holds (further entries are refused; raises still apply).
MAX_RETIRED = 65536
BUCKETS = RETIRED_BUCKETS
BUCKET_BYTES = RETIRED_BUCKET_BYTES

RT = b"rt:"  # the table: RT + origin -> final counter (8 bytes)
_RS = b"rs:"  # the fingerprint: _RS + bucket (1 byte) -> sum (8) + count (4)
_RQ = b"rq:"  # the recency log: _RQ + sequence (8 bytes) -> origin, the last RECENT kept
_RQN = b"rqn"  # the next sequence number of the recency log
_RI = b"ri"  # the difference sketch (:mod:`._sketch`) of the table's entries
_RIN = b"rin"  # how many entries the sketch holds (the table's count when it is current)
_RH = b"rh:"  # the sketch's id index: _RH + id (6 bytes) -> origin
#: Entries the recency log keeps (the newest created or raised).
RECENT = 1024
_MASK = 2**64 - 1

# the watermark rows (:mod:`._watermarks` keeps them; named here, below it, so both
# modules read one definition)
WM = b"wm:"  # complete watermarks: WM + origin
WQ = b"wq:"  # scope-qualified watermarks: WQ + scope id + origin
SQ = b"sq:"  # the scopes of the qualified watermarks: SQ + scope id -> packed scope


bucket = retired_bucket
term = retired_term


def retired(txn: Txn, origin: str) -> int:
    """The final counter the table holds for ``origin`` (0: not retired)."""
    return txn.counter(RT + origin.encode())


def has_table(txn: Txn) -> bool:
    return any(True for _ in itertools.islice(txn.prefix("meta", RT), 1))


def _present(txn: Txn, name: bytes) -> bool:
    """Whether the ``meta`` row ``name`` exists (set in this transaction or stored)."""
    return name in txn.dirty or txn.get("meta", name) is not None


def implicit(txn: Txn, origin: str) -> int:
    """The implicit complete mark of ``origin``: its final counter when it is retired
    and has no ``wm:`` row (see module doc), else 0."""
    final = retired(txn, origin)
    if final and not _present(txn, WM + origin.encode()):
        return final
    return 0


def _bucket_row(txn: Txn, b: int) -> tuple[int, int]:
    raw = txn.get("meta", _RS + bytes([b]))
    if raw is None or len(raw) != BUCKET_BYTES:
        return 0, 0
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def fingerprint(txn: Txn) -> bytes | None:
    """The table's fingerprint, ``BUCKETS`` x (sum, count); None when it is empty."""
    rows = [_bucket_row(txn, b) for b in range(BUCKETS)]
    if not any(count for _, count in rows):
        return None
    return b"".join(s.to_bytes(8, "big") + c.to_bytes(4, "big") for s, c in rows)


def sketch(txn: Txn) -> bytes | None:
    """The table's difference sketch (``rti``); None when the table is empty or the
    sketch lags it (a table written before the sketch existed, until its next join)."""
    raw = txn.get("meta", _RI)
    if raw is None or len(raw) != _sketch.SKETCH_BYTES or not txn.counter(_RIN) \
            or txn.counter(_RIN) != _count(txn):
        return None
    return bytes(raw)


def _ident(origin: str, final: int) -> int:
    """An entry's id in the sketch (:func:`._sketch.ident` of its fingerprint term)."""
    return _sketch.ident(term(origin, final))


def _id_key(ident: int) -> bytes:
    return _RH + ident.to_bytes(_sketch.ID_BYTES, "big")


def _resketch(txn: Txn, moves: list[tuple[int | None, int, bytes]]) -> None:
    """Move the sketch and its id index, for each ``(removed, added, origin)``, from id
    ``removed`` (an entry's old id, None for a new entry) to ``added``: one write of
    the sketch for a whole join."""
    if not moves:
        return
    toggled: list[int] = []
    new = 0
    for removed, added, origin in moves:
        if removed is None:
            new += 1
        else:
            toggled.append(removed)
            txn.delete("meta", _id_key(removed))
        toggled.append(added)
        txn.put("meta", _id_key(added), origin)
    raw = txn.get("meta", _RI)
    txn.put("meta", _RI, _sketch.toggle(_sketch.empty() if raw is None else bytes(raw),
                                        toggled))
    txn.set_counter(_RIN, txn.counter(_RIN) + new)


def _rebuild_sketch(txn: Txn) -> None:
    """Sketch every entry of the table afresh (a table that predates the sketch)."""
    for k, _ in list(txn.prefix("meta", _RH)):
        txn.delete("meta", k)
    idents: list[int] = []
    for k, v in txn.prefix("meta", RT):
        ident = _ident(k[len(RT):].decode(), int.from_bytes(v, "big"))
        idents.append(ident)
        txn.put("meta", _id_key(ident), k[len(RT):])
    txn.put("meta", _RI, _sketch.toggle(_sketch.empty(), idents))
    txn.set_counter(_RIN, len(idents))


def owned(txn: Txn, idents: set[int]) -> dict[str, int]:
    """The entries of this table among the sketch ids ``idents`` (the others are not
    ours: a peer's entries, or an old value of an entry raised since)."""
    out: dict[str, int] = {}
    for ident in idents:
        raw = txn.get("meta", _id_key(ident))
        if raw is None:
            continue
        origin = bytes(raw).decode()
        final = retired(txn, origin)
        if final and _ident(origin, final) == ident:
            out[origin] = final
    return out


def lacking(txn: Txn, mine: bytes, theirs: bytes | None, their_sketch: bytes | None
            ) -> tuple[dict[str, int], bool] | None:
    """Entries a peer with fingerprint ``theirs`` and difference sketch ``their_sketch``
    lacks (or holds lower), read from the two sketches' difference, and whether they are
    all of them: True when it peeled whole and accounts for the fingerprints' sums (the
    ids carry the top 48 bits of each term: the peer's own entries add at most 2**16 - 1
    each beyond them); False when it peeled in part (what it lists is still lacking).
    None without sketches, or when the difference lists nothing of ours and is not whole
    or does not add up (the buckets take over)."""
    ours = sketch(txn)
    if ours is None or their_sketch is None or theirs is None:
        return None
    idents, whole = _sketch.difference(ours, their_sketch)
    out = owned(txn, idents)
    if whole:
        own = {_ident(o, f) for o, f in out.items()}
        peers = idents - own
        low = sum(int.from_bytes(s, "big") for s, _ in split(theirs))
        low -= sum(int.from_bytes(s, "big") for s, _ in split(mine))
        low += sum(term(o, f) for o, f in out.items())
        low -= sum(i << (64 - 8 * _sketch.ID_BYTES) for i in peers)
        whole = (low & _MASK) <= len(peers) * ((1 << (64 - 8 * _sketch.ID_BYTES)) - 1)
    if not whole and not out:
        return None
    return out, whole


def split(print_: bytes | None) -> list[tuple[bytes, int]]:
    """A fingerprint as ``BUCKETS`` (8-byte sum, count) pairs (None: an empty table)."""
    if print_ is None:
        return [(bytes(8), 0)] * BUCKETS
    return [(print_[i:i + 8], int.from_bytes(print_[i + 8:i + BUCKET_BYTES], "big"))
            for i in range(0, BUCKETS * BUCKET_BYTES, BUCKET_BYTES)]


def differing(mine: bytes | None, theirs: bytes | None) -> list[int]:
    """The buckets worth shipping to a peer with fingerprint ``theirs``: those that
    differ where ours holds at least as many entries (a smaller bucket of ours may lack
    nothing theirs has; if it does, the peer ships its bucket to us, we take the union,
    and ours is then the larger: at most two exchanges per pair)."""
    ours, peers = split(mine), split(theirs)
    return [b for b in range(BUCKETS)
            if ours[b] != peers[b] and ours[b][1] >= peers[b][1] and ours[b][1]]


def entries(txn: Txn, buckets: set[int]) -> Iterator[tuple[str, int]]:
    """The entries of the table that fall in ``buckets``, in origin order."""
    for k, v in txn.prefix("meta", RT):
        origin = k[len(RT):].decode()
        if bucket(origin) in buckets:
            yield origin, int.from_bytes(v, "big")


def _count(txn: Txn) -> int:
    return sum(count for _, count in (_bucket_row(txn, b) for b in range(BUCKETS)))


def join(txn: Txn, incoming: Mapping[str, int], held: Mapping[str, int] | None = None
         ) -> tuple[dict[str, int], int]:
    """Max-join ``incoming`` into the table: the entries that rose, and how many new
    ones were refused at :data:`MAX_RETIRED`. An origin without a ``wm:`` row gets one at
    what this replica held of it before (its implicit mark, or ``held`` — e.g. an own
    origin's counter — or 0), then is compacted if it is held exactly through F."""
    raised: dict[str, int] = {}
    refused = 0
    size: int | None = None
    if incoming and txn.counter(_RIN) != _count(txn):
        _rebuild_sketch(txn)
    moves: list[tuple[int | None, int, bytes]] = []
    for origin, final in incoming.items():
        old = retired(txn, origin)
        if final <= old:
            continue
        if not old:
            if size is None:
                size = _count(txn)
            if size >= MAX_RETIRED:
                refused += 1
                continue
            size += 1
        o = origin.encode()
        if not _present(txn, WM + o):
            before = old or (held or {}).get(origin, 0)
            txn.set_counter(WM + o, before)
        b = bucket(origin)
        total, count = _bucket_row(txn, b)
        total = (total - (term(origin, old) if old else 0) + term(origin, final)) & _MASK
        txn.put("meta", _RS + bytes([b]), total.to_bytes(8, "big")
                + (count + (0 if old else 1)).to_bytes(4, "big"))
        txn.set_counter(RT + o, final)
        moves.append((_ident(origin, old) if old else None, _ident(origin, final), o))
        seq = txn.counter(_RQN)
        txn.put("meta", _RQ + seq.to_bytes(8, "big"), o)
        if seq >= RECENT:
            txn.delete("meta", _RQ + (seq - RECENT).to_bytes(8, "big"))
        txn.set_counter(_RQN, seq + 1)
        raised[origin] = final
        compact(txn, origin)
    _resketch(txn, moves)
    return raised, refused


def recent(txn: Txn) -> Iterator[str]:
    """The origins of the newest entries created or raised here, newest first (each
    once; at most :data:`RECENT`)."""
    seen: set[str] = set()
    cur = txn.cursor("meta")
    end = txn.counter(_RQN)
    if not end or not cur.set_range(_RQ + (end - 1).to_bytes(8, "big")):
        return
    while True:
        key = bytes(cur.key())
        if not key.startswith(_RQ):
            return
        origin = bytes(cur.value()).decode()
        if origin not in seen:
            seen.add(origin)
            yield origin
        if not cur.prev():
            return


def missing_suffix(txn: Txn, b: int, mine: tuple[bytes, int], theirs: tuple[bytes, int]
                   ) -> dict[str, int] | None:
    """The entries of bucket ``b`` a peer lacks when its bucket (``theirs``: sum, count)
    is ours (``mine``) less our newest few entries of ``b``: those entries; None when no
    such suffix of the recency log explains the difference."""
    total = int.from_bytes(mine[0], "big")
    want = int.from_bytes(theirs[0], "big")
    lacking = mine[1] - theirs[1]
    if lacking <= 0:
        return None
    out: dict[str, int] = {}
    for origin in recent(txn):
        if bucket(origin) != b:
            continue
        final = retired(txn, origin)
        out[origin] = final
        total = (total - term(origin, final)) & _MASK
        if len(out) == lacking:
            return out if total == want else None
    return None


def compact(txn: Txn, origin: str) -> bool:
    """Delete ``origin``'s watermark rows when it is retired at F and both its complete
    mark and every scope's mark are exactly F (then its mark is implicit: see module
    doc). True when it did."""
    final = retired(txn, origin)
    o = origin.encode()
    name = WM + o
    if not final or not _present(txn, name) or txn.counter(name) != final:
        return False
    scoped = [WQ + k[len(SQ):] + o for k, _ in txn.prefix("meta", SQ)]
    if any(txn.counter(k) > final for k in scoped):
        return False
    for k in (name, *scoped):
        if _present(txn, k):
            _drop(txn, k)
    return True


def _drop(txn: Txn, name: bytes) -> None:
    txn.counters.pop(name, None)
    txn.dirty.discard(name)
    txn.delete("meta", name)
    txn.counters[name] = 0


class PeerMarks(Mapping[str, int]):
    """A peer's ``wm`` as the reading rule sees it (see module doc), for a summary with
    table fingerprint ``theirs`` (None: the peer has no table, an unlisted origin is
    absent). An origin it does not list counts as held through our final counter when
    we retire it; else, when its fingerprint bucket on the peer may hold entries ours
    lacks (the bucket differs and the peer's holds at least as many), as held through
    the latest event of it held here: the peer may have left it out as retired, and
    shipping it again would repeat at every exchange this way until our table catches
    up (a peer that lacks it has no entry for it, so once the tables agree, or from a
    member that has its entry, it is served). Never so for ``me``, the reader's own
    minting origin: its new events always go out. Iterates over the listed origins
    only."""

    __slots__ = ("_cache", "_listed", "_me", "_table", "_txn", "_uncertain")

    def __init__(self, txn: Txn, listed: Mapping[str, int], theirs: bytes | None,
                 me: str | None = None) -> None:
        self._txn = txn
        self._me = me
        self._listed = listed
        self._table = theirs is not None
        self._cache: dict[str, int] = {}
        self._uncertain: frozenset[int] = frozenset()
        if theirs is not None:
            ours, peers = split(fingerprint(txn)), split(theirs)
            self._uncertain = frozenset(b for b in range(BUCKETS) if peers[b] != ours[b]
                                        and peers[b][1] >= max(ours[b][1], 1))

    def _implied(self, origin: str) -> int:
        value = self._cache.get(origin)
        if value is None:
            value = retired(self._txn, origin) if self._table else 0
            if not value and origin != self._me and bucket(origin) in self._uncertain:
                value = latest_counter(self._txn, origin)
            self._cache[origin] = value
        return value

    def __getitem__(self, origin: str) -> int:
        value = self._listed.get(origin)
        if value is not None:
            return value
        value = self._implied(origin)
        if not value:
            raise KeyError(origin)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed)

    def __len__(self) -> int:
        return len(self._listed)

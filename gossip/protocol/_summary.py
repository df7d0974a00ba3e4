"""Helpers of the session over the sync messages, read through storage's wire format.

The session *streams* several chunks per round without asking the peer again: after
shipping a chunk computed for summary ``S``, the next chunk is computed for
``advance_summary(S, chunk)``. When a message cannot be read (it is malformed) the
helpers say so (``None``) and the session falls back to one chunk per round, which is
slower but still correct, since every round starts from a fresh summary.

Summaries derived from a peer's (a stream's continuation, a push) drop ``digest`` and
``want``: the first chunk of a pull already carried the repair listing and the wanted
keys, so every later chunk (and every push) would re-list hashes and re-ship the keys.
"""

from __future__ import annotations

from dataclasses import replace

from memmesh.crdt import DecodeError, base_replica
from memmesh.storage.wire import (
    Summary,
    fold_retired,
    fold_sketch,
    parse_changes,
    parse_summary,
)

__all__ = ["advance_summary", "asks_repair", "changes_empty", "push_summary", "summary_lag",
           "summary_root", "watermarks"]


def _summary(blob: bytes) -> Summary | None:
    try:
        return parse_summary(blob)
    except DecodeError:
        return None


def _derived(summary: Summary, wm: dict[str, int],
             table: tuple[bytes | None, bytes | None] | None = None) -> bytes:
    """``summary`` with watermarks ``wm`` and without the once-per-pull fields (repair's,
    and ``revoked``: the first chunk shipped the revocations the peer lacked); ``table``,
    when given with a fingerprint, replaces its retirement-table fingerprint and
    difference sketch."""
    rt, rti = (summary.rt, summary.rti) if table is None or table[0] is None else table
    packed: bytes = replace(summary, wm=wm, digest=None, want=(), revoked=None,
                            rt=rt, rti=rti).pack()
    return packed


def watermarks(summary: bytes) -> dict[str, int] | None:
    """The ``wm`` map of a summary, or None when it cannot be read."""
    s = _summary(summary)
    return None if s is None else dict(s.wm)


def summary_root(summary: bytes) -> bytes | None:
    """The ``root`` of a summary (the digest of the sender's shareable state when it took
    the summary), or None when it cannot be read."""
    s = _summary(summary)
    return None if s is None else s.root


def asks_repair(summary: bytes) -> bool:
    """True when a summary carries digest repair's ``digest`` or ``want``."""
    s = _summary(summary)
    return s is not None and (s.digest is not None or bool(s.want))


def advance_summary(summary: bytes, changes: bytes) -> bytes | None:
    """``summary`` with its watermarks raised to the ``through`` claims of ``changes``.

    Returns None when either message is unreadable or when no watermark moves (so no
    further progress can be promised and the stream must stop).  Digest repair's
    ``digest`` and ``want`` are dropped: the first chunk answered them.
    """
    s = _summary(summary)
    if s is None:
        return None
    try:
        parsed = parse_changes(changes)
    except DecodeError:
        return None
    wm = dict(s.wm)
    # retirement entries the chunk carried: the peer now has them, lists each origin it
    # did not list at what it holds (0 here: it is served from the start again, which is
    # safe) and leaves out those it holds exactly through theirs, so the next chunk
    # neither re-ships them nor skips those origins' events
    entries = parsed.retired or {}
    retired = {o: f for o, f in entries.items() if o not in wm}
    wm.update(dict.fromkeys(retired, 0))
    moved = False
    for origin, (_, n) in parsed.through.items():
        if n > wm.get(origin, 0):
            wm[origin] = n
            moved = True
    for origin, final in entries.items():  # held through its entry: left out (omission)
        if wm.get(origin) == final:
            del wm[origin]
    table = (fold_retired(s.rt, retired), fold_sketch(s.rt, s.rti, retired))
    return _derived(s, wm, table) if moved else None


def push_summary(peer: bytes, local: bytes, origin: str) -> bytes | None:
    """The summary to compute a *push* with: only the events of replica ``origin``'s own
    origins go out (every ``origin#incarnation``, and the bare id of older dots).

    Claims the peer holds every event of every other origin that ``local`` holds, so
    ``sync_changes`` ships just the keys with new events of ``origin``.  Pushes then never
    relay third-party data that the peer probably got from its source already (the
    redundancy Enes et al., ICDE 2019, measure in classic delta propagation);
    anti-entropy pulls still repair anything a push missed.  The peer's ``digest`` and
    ``want`` are dropped (its pull answered them).  None if unreadable.

    Origins ``local`` leaves out as retired (storage's omission rule) are claimed too: the
    result carries ``local``'s retirement fingerprint and sketch (else the peer's), so the sender
    reads them as held through their final counters.
    """
    p = _summary(peer)
    mine = _summary(local)
    if p is None or mine is None:
        return None
    wm = {o: p.wm.get(o, 0) if base_replica(o) == origin else max(n, p.wm.get(o, 0))
          for o, n in mine.wm.items()}
    return _derived(p, wm, (mine.rt, mine.rti))


def changes_empty(changes: bytes) -> bool:
    """True when a changes payload carries nothing: no bytes, or nothing besides its
    envelope (a restricted payload's ``scope`` is not data)."""
    if not changes:
        return True
    try:
        empty: bool = parse_changes(changes).empty
    except DecodeError:
        return False
    return empty


def summary_lag(mine: bytes, theirs: bytes) -> int | None:
    """Events we hold that the peer's summary lacks: ``sum(max(0, mine[o] - theirs[o]))``."""
    a = watermarks(mine)
    b = watermarks(theirs)
    if a is None or b is None:
        return None
    return sum(max(0, n - b.get(o, 0)) for o, n in a.items())

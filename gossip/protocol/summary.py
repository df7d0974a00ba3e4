"""Pure helpers over storage's documented sync formats (docs/internals.md, section 2).

A summary is ``packb({"v": 1, "rid": ..., "wm": {origin: counter}, "root": ...})``: the
per-origin watermarks of a replica (Scuttlebutt-style), plus digest repair's optional
``digest`` (bucket sums) and ``want`` (key ids to ship whatever the watermarks say).  A
changes blob carries ``"through": {origin: (base, counter)}`` claims: the watermarks its
receiver may raise to, if it already holds ``origin`` up to ``base`` (so a lost chunk is
never skipped).

The session uses these to *stream* several chunks per round without asking the peer
again: after shipping a chunk computed for summary ``S``, the next chunk is computed for
``advance_summary(S, chunk)``.  When a blob cannot be read this way (an unknown format)
the helpers say so (``None``) and the session falls back to one chunk per round, which
is slower but still correct, since every round starts from a fresh summary.

Summaries derived from a peer's (a stream's continuation, a push) drop ``digest`` and
``want``: the first chunk of a pull already carried the repair listing and the wanted
keys, so every later chunk (and every push) would re-list hashes and re-ship the keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from memmesh.crdt.codec import packb, unpackb
from memmesh.crdt.dot import base_replica
from memmesh.crdt.errors import DecodeError

__all__ = ["advance_summary", "asks_repair", "changes_empty", "push_summary", "summary_lag",
           "summary_root", "watermarks"]

#: Summary fields a derived summary (continuation, push) must not repeat: digest repair's.
_ONCE_PER_PULL = frozenset({"digest", "want"})

#: Fields of a changes blob that describe it rather than carry data to apply.
_ENVELOPE = frozenset({"v", "rid", "scope"})


def _map(blob: bytes) -> Mapping[object, object] | None:
    try:
        obj = unpackb(blob)
    except DecodeError:
        return None
    return obj if isinstance(obj, Mapping) else None


def _wm(obj: object) -> dict[str, int] | None:
    if not isinstance(obj, Mapping):
        return None
    out: dict[str, int] = {}
    for k, v in obj.items():
        if type(k) is not str or type(v) is not int:
            return None
        out[k] = v
    return out


def _claims(obj: object) -> dict[str, int] | None:
    """The claimed counters of a ``through`` map of ``(base, counter)`` pairs."""
    if not isinstance(obj, Mapping):
        return None
    out: dict[str, int] = {}
    for k, v in obj.items():
        if type(k) is not str or type(v) is not tuple or len(v) != 2 \
                or type(v[1]) is not int:
            return None
        out[k] = v[1]
    return out


def watermarks(summary: bytes) -> dict[str, int] | None:
    """The ``wm`` map of a summary, or None when it cannot be read."""
    m = _map(summary)
    return None if m is None else _wm(m.get("wm"))


def summary_root(summary: bytes) -> bytes | None:
    """The ``root`` of a summary (the digest of the sender's shareable state when it took
    the summary), or None when it cannot be read."""
    m = _map(summary)
    root = None if m is None else m.get("root")
    return root if type(root) is bytes else None


def asks_repair(summary: bytes) -> bool:
    """True when a summary carries digest repair's ``digest`` or ``want``."""
    m = _map(summary)
    return m is not None and ("digest" in m or "want" in m)


def _derived(summary: Mapping[object, object], wm: dict[str, int]) -> bytes:
    """``summary`` with watermarks ``wm`` and without the once-per-pull repair fields."""
    out = {k: v for k, v in summary.items() if isinstance(k, str) and k not in _ONCE_PER_PULL}
    out["wm"] = wm
    packed: bytes = packb(out)
    return packed


def advance_summary(summary: bytes, changes: bytes) -> bytes | None:
    """``summary`` with its watermarks raised to the ``through`` claims of ``changes``.

    Returns None when either blob is unreadable or when no watermark moves (so no
    further progress can be promised and the stream must stop).  Digest repair's
    ``digest`` and ``want`` are dropped: the first chunk answered them.
    """
    s = _map(summary)
    c = _map(changes)
    if s is None or c is None:
        return None
    wm = _wm(s.get("wm"))
    through = _claims(c.get("through"))
    if wm is None or through is None:
        return None
    moved = False
    for origin, n in through.items():
        if n > wm.get(origin, 0):
            wm[origin] = n
            moved = True
    if not moved:
        return None
    return _derived(s, wm)


def push_summary(peer: bytes, local: bytes, origin: str) -> bytes | None:
    """The summary to compute a *push* with: only the events of replica ``origin``'s own
    origins go out (every ``origin#incarnation``, and the bare id of older dots).

    Claims the peer holds every event of every other origin that ``local`` holds, so
    ``sync_changes`` ships just the keys with new events of ``origin``.  Pushes then never
    relay third-party data that the peer probably got from its source already (the
    redundancy Enes et al., ICDE 2019, measure in classic delta propagation);
    anti-entropy pulls still repair anything a push missed.  The peer's ``digest`` and
    ``want`` are dropped (its pull answered them).  None if unreadable.
    """
    p = _map(peer)
    peer_wm = None if p is None else _wm(p.get("wm"))
    local_wm = watermarks(local)
    if p is None or peer_wm is None or local_wm is None:
        return None
    wm = {o: peer_wm.get(o, 0) if base_replica(o) == origin else max(n, peer_wm.get(o, 0))
          for o, n in local_wm.items()}
    return _derived(p, wm)


def changes_empty(changes: bytes) -> bool:
    """True when a changes blob carries nothing: no bytes, or only empty containers
    besides its envelope (a restricted payload's ``scope`` is not data)."""
    if not changes:
        return True
    c = _map(changes)
    if c is None:
        return False
    return all(not v for k, v in c.items()
               if k not in _ENVELOPE and isinstance(v, (tuple, list, dict, Mapping, bytes)))


def summary_lag(mine: bytes, theirs: bytes) -> int | None:
    """Events we hold that the peer's summary lacks: ``sum(max(0, mine[o] - theirs[o]))``."""
    a = watermarks(mine)
    b = watermarks(theirs)
    if a is None or b is None:
        return None
    return sum(max(0, n - b.get(o, 0)) for o, n in a.items())

"""The retirement table's difference sketch: an invertible Bloom lookup table (IBLT) of
its entries, constant-size, carried in summaries as ``rti``.

Eppstein, Goodrich, Uyeda and Varghese, "What's the Difference? Efficient Set
Reconciliation without Prior Context" (SIGCOMM 2011): each entry, identified by its
64-bit fingerprint term (``wire.retired_term(origin, F)``), is XORed into one cell of
each of :data:`HASHES` disjoint sub-tables; a cell is (XOR of the ids, XOR of their
32-bit checks). XORing two sketches cell by cell leaves the symmetric difference of the
two tables, which *peeling* (:func:`difference`) lists exactly while it is small (about
``CELLS / 1.5`` entries): a changes payload then ships just the entries the peer lacks
instead of whole fingerprint buckets. Larger differences do not decode (None) and the
16-bucket fingerprint takes over. The sketch needs no counts: the reader tells its own
entries from the peer's by looking the ids up in its table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["CELLS", "CELL_BYTES", "HASHES", "SKETCH_BYTES", "difference", "empty",
           "toggle"]

#: Cells of the sketch, in :data:`HASHES` sub-tables of ``CELLS // HASHES``.
CELLS = 30
HASHES = 3
_SUB = CELLS // HASHES
#: Bytes of one cell: the XOR of its ids (8) and of their checks (4).
CELL_BYTES = 12
SKETCH_BYTES = CELLS * CELL_BYTES
_PERSON = b"mm-rt-iblt-v1"


def _hash(ident: int) -> tuple[int, tuple[int, ...]]:
    """An id's 32-bit check and its cell in each sub-table."""
    h = hashlib.blake2b(ident.to_bytes(8, "big"), digest_size=16, person=_PERSON).digest()
    return (int.from_bytes(h[:4], "big"),
            tuple(j * _SUB + int.from_bytes(h[4 + 4 * j:8 + 4 * j], "big") % _SUB
                  for j in range(HASHES)))


def empty() -> bytes:
    return bytes(SKETCH_BYTES)


def _cells(sketch: bytes) -> list[tuple[int, int]]:
    return [(int.from_bytes(sketch[i:i + 8], "big"),
             int.from_bytes(sketch[i + 8:i + CELL_BYTES], "big"))
            for i in range(0, SKETCH_BYTES, CELL_BYTES)]


def _pack(cells: list[tuple[int, int]]) -> bytes:
    return b"".join(i.to_bytes(8, "big") + c.to_bytes(4, "big") for i, c in cells)


def toggle(sketch: bytes, idents: Iterable[int]) -> bytes:
    """``sketch`` with each of ``idents`` XORed in (added if absent, removed if present)."""
    cells = _cells(sketch)
    for ident in idents:
        check, where = _hash(ident)
        for c in where:
            i, k = cells[c]
            cells[c] = (i ^ ident, k ^ check)
    return _pack(cells)


def difference(mine: bytes, theirs: bytes) -> set[int] | None:
    """The ids in exactly one of the two sketched sets, or None when the difference is
    too large to decode (some cell is left unpeeled)."""
    cells = [(a ^ b, c ^ d) for (a, c), (b, d) in zip(_cells(mine), _cells(theirs),
                                                        strict=True)]
    found: set[int] = set()
    pending = list(range(CELLS))
    while pending:
        c = pending.pop()
        ident, check = cells[c]
        if not ident and not check:
            continue
        own, where = _hash(ident)
        if own != check or c not in where or ident in found:
            continue  # not a pure cell (yet)
        found.add(ident)
        for w in where:
            i, k = cells[w]
            cells[w] = (i ^ ident, k ^ own)
            pending.append(w)
    if any(i or k for i, k in cells):
        return None
    return found

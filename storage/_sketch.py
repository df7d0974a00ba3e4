"""The retirement table's difference sketch: an invertible Bloom lookup table (IBLT) of
its entries, constant-size, carried in summaries as ``rti``.

Eppstein, Goodrich, Uyeda and Varghese, "What's the Difference? Efficient Set
Reconciliation without Prior Context" (SIGCOMM 2011): each entry, identified by the top
48 bits of its fingerprint term (:func:`ident` of ``wire.retired_term(origin, F)``), is
XORed into one cell of each of :data:`HASHES` disjoint sub-tables; a cell is (XOR of
the ids, XOR of their 16-bit checks). XORing two sketches cell by cell leaves the
symmetric difference of the two tables, which *peeling* (:func:`difference`) lists
exactly while it is small (up to about ``CELLS / 1.5`` entries): a changes payload then
ships just the entries the peer lacks instead of whole fingerprint buckets. A larger
difference peels only in part (``complete`` False): the entries peeled are still
exact, and the 16-bucket fingerprint takes over when none is ours. The sketch needs no
counts: the reader tells its own entries from the peer's by looking the ids up in its
table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["CELLS", "CELL_BYTES", "HASHES", "ID_BYTES", "SKETCH_BYTES", "difference", "empty",
           "ident", "toggle"]

#: Cells of the sketch, in :data:`HASHES` sub-tables of ``CELLS // HASHES``.
CELLS = 60
HASHES = 3
_SUB = CELLS // HASHES
ID_BYTES = 6
_CHECK_BYTES = 2
#: Bytes of one cell: the XOR of its ids (6) and of their checks (2).
CELL_BYTES = ID_BYTES + _CHECK_BYTES
SKETCH_BYTES = CELLS * CELL_BYTES
_PERSON = b"mm-rt-iblt-v1"


def ident(term: int) -> int:
    """The sketch id of an entry with 64-bit fingerprint ``term``: its top 48 bits."""
    return term >> (64 - 8 * ID_BYTES)


def _hash(key: int) -> tuple[int, tuple[int, ...]]:
    """An id's 16-bit check and its cell in each sub-table."""
    h = hashlib.blake2b(key.to_bytes(ID_BYTES, "big"), digest_size=16,
                        person=_PERSON).digest()
    return (int.from_bytes(h[:_CHECK_BYTES], "big"),
            tuple(j * _SUB + int.from_bytes(h[4 + 4 * j:8 + 4 * j], "big") % _SUB
                  for j in range(HASHES)))


def empty() -> bytes:
    return bytes(SKETCH_BYTES)


def _cells(sketch: bytes) -> list[tuple[int, int]]:
    return [(int.from_bytes(sketch[i:i + ID_BYTES], "big"),
             int.from_bytes(sketch[i + ID_BYTES:i + CELL_BYTES], "big"))
            for i in range(0, SKETCH_BYTES, CELL_BYTES)]


def _pack(cells: list[tuple[int, int]]) -> bytes:
    return b"".join(i.to_bytes(ID_BYTES, "big") + c.to_bytes(_CHECK_BYTES, "big")
                    for i, c in cells)


def toggle(sketch: bytes, idents: Iterable[int]) -> bytes:
    """``sketch`` with each of ``idents`` XORed in (added if absent, removed if present)."""
    cells = _cells(sketch)
    for key in idents:
        check, where = _hash(key)
        for c in where:
            i, k = cells[c]
            cells[c] = (i ^ key, k ^ check)
    return _pack(cells)


def difference(mine: bytes, theirs: bytes) -> tuple[set[int], bool]:
    """The ids peeled from the two sketches' difference, each in exactly one of the two
    sets, and whether that is all of it (False: the difference was too large to list
    whole; what was peeled is still exact)."""
    cells = [(a ^ b, c ^ d) for (a, c), (b, d) in zip(_cells(mine), _cells(theirs),
                                                        strict=True)]
    found: set[int] = set()
    pending = list(range(CELLS))
    while pending:
        c = pending.pop()
        key, check = cells[c]
        if not key and not check:
            continue
        own, where = _hash(key)
        if own != check or c not in where or key in found:
            continue  # not a pure cell (yet)
        if len(found) == CELLS:  # more than any difference this size lists whole
            break
        found.add(key)
        for w in where:
            i, k = cells[w]
            cells[w] = (i ^ key, k ^ own)
            pending.append(w)
    return found, not any(i or k for i, k in cells)

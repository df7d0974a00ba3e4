"""Keep the LMDB map's file pages from piling up in the process's resident set.

LMDB reads through a shared read-only ``mmap``; every page a read touches stays mapped
(Linux's fault-around maps up to 64 KiB of cached neighbours with it), so random reads
over a large replica put most of the file in the RSS that operators and container
limits watch (docs/internals.md, section 2). :class:`MapTrimmer` drops those pages
every ``every`` reads or writes with ``madvise(MADV_DONTNEED)``, which for a shared file
mapping only unmaps them (the data stays in the page cache): safe at any moment. It
learns the mapping by diffing ``/proc/self/maps`` around each call that maps the file,
and :data:`MAP_LOCK` keeps a trim off an unmapped and reused range. Linux only;
elsewhere trimming is a no-op. Reading ``/proc/self/maps`` costs O(mappings), so a
process holding thousands of small environments (the simulator) opens them inside
:func:`untracked`, which leaves them untrimmed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["MAP_LOCK", "MapTrimmer", "untracked"]

T = TypeVar("T")

#: Held around every map/unmap of a replica's LMDB map and around every trim.
MAP_LOCK = threading.RLock()

_MADV_DONTNEED = 4  # Linux value


def _load_madvise() -> Callable[[int, int, int], int] | None:
    if not os.path.exists("/proc/self/maps"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


_madvise = _load_madvise()
_untracked = 0  # depth of untracked() blocks, under MAP_LOCK


@contextmanager
def untracked() -> Iterator[None]:
    """Environments mapped (opened, grown, reopened) inside the block, in any thread,
    learn no address range, so they are never trimmed: each map costs O(1) instead of
    two reads of ``/proc/self/maps``, which grow with every environment the process
    holds (quadratic over thousands of them). Their pages stay resident until unmapped."""
    global _untracked
    with MAP_LOCK:
        _untracked += 1
    try:
        yield
    finally:
        with MAP_LOCK:
            _untracked -= 1


_Mapping = tuple[int, int, int, int, int]  # (major, minor, inode, start, end)


def _shared_readonly_mappings() -> set[_Mapping]:
    """Every read-only shared file mapping of this process (from /proc/self/maps)."""
    out = set()
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[1] != "r--s":
                continue
            major, minor = fields[3].split(":")
            start, end = fields[0].split("-")
            out.add((int(major, 16), int(minor, 16), int(fields[4]), int(start, 16),
                     int(end, 16)))
    return out


class MapTrimmer:
    """Counts reads and writes of one environment and trims its mapping every ``every``
    of them (writes fault the B-tree pages they walk through the map in as well)."""

    __slots__ = ("_count", "_data_path", "_ranges", "every", "trims")

    def __init__(self, data_path: str, *, every: int = 512) -> None:
        self._data_path = data_path
        self.every = every
        self._count = 0
        self._ranges: list[tuple[int, int]] = []
        self.trims = 0

    def track(self, remap: Callable[[], T]) -> T:
        """Run ``remap`` (a call that maps or remaps this environment's file) under
        :data:`MAP_LOCK` and remember the address range it left mapped."""
        if _madvise is None:
            return remap()
        with MAP_LOCK:
            if _untracked:
                self._ranges = []
                return remap()
            try:
                before = _shared_readonly_mappings()
            except OSError:
                before = None
            result = remap()
            previous, self._ranges = set(self._ranges), []
            if before is not None:
                try:
                    st = os.stat(self._data_path)
                    after = _shared_readonly_mappings()
                except OSError:
                    return result
                ident = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
                mine = {m[3:] for m in after if m[:3] == ident}
                others = {m[3:] for m in before if m[:3] == ident} - previous
                self._ranges = sorted(mine - others)
            return result

    def untrack(self, unmap: Callable[[], T]) -> T:
        """Run ``unmap`` (closing the environment) under :data:`MAP_LOCK`; no more trims."""
        with MAP_LOCK:
            self._ranges = []
            return unmap()

    def tick(self, n: int = 1) -> None:
        """Note ``n`` reads or writes (each may fault map pages in); trim when ``every``
        have passed since the last trim."""
        self._count += n
        if self._count >= self.every:
            self._count = 0
            self.trim()

    def trim(self) -> None:
        """Unmap this environment's pages from the process (they stay in the page cache)."""
        if _madvise is None or not self._ranges:
            return
        with MAP_LOCK:
            for start, end in self._ranges:
                _madvise(start, end - start, _MADV_DONTNEED)
        self.trims += 1

"""Keep the LMDB map's file pages from piling up in the process's resident set.

LMDB reads through a shared read-only ``mmap`` of ``data.mdb``. Every page a read
touches stays mapped, and on Linux a page fault maps up to 64 KiB of already cached
neighbours with it ("fault-around", which ``MADV_RANDOM``, LMDB's no-readahead flag,
does not turn off). A process serving random ``get``/``list`` calls over a large
replica therefore ends up with most of the file in its RSS (measured: 1M memories,
21k random reads, 1 GB of ``RssFile`` against 13 MB of its own memory). Those pages are
clean page cache, shared and reclaimable, but they count as the process's RSS, which is
what operators and container limits watch.

:class:`MapTrimmer` drops them from the mapping every ``every`` reads or writes with
``madvise(MADV_DONTNEED)``: for a shared file mapping that only unmaps the pages (the
data stays in the page cache and the file; the next read faults it back in), so it is
safe at any moment, even while other threads read (py-lmdb copies values out, since the
replica opens transactions with ``buffers=False``). Only read-only shared mappings of
this environment's ``data.mdb`` (matched by device and inode in ``/proc/self/maps``)
are touched. Because ``madvise`` must never hit an address range that was just
unmapped and reused, every unmap or remap of a replica's map (``set_mapsize``,
``close``, the environment being collected) and every trim hold :data:`MAP_LOCK`.

Linux only; elsewhere (no ``/proc/self/maps`` or no ``madvise``) trimming is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable

__all__ = ["MAP_LOCK", "MapTrimmer"]

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


class MapTrimmer:
    """Counts reads and writes of one environment and trims its mapping every ``every``
    of them (writes fault the B-tree pages they walk through the map in as well)."""

    __slots__ = ("_count", "_dev", "_enabled", "_every", "_ino", "trims")

    def __init__(self, data_path: str, *, every: int = 512) -> None:
        self._every = every
        self._count = 0
        self.trims = 0
        try:
            st = os.stat(data_path)
        except OSError:
            self._enabled = False
            return
        self._dev = (os.major(st.st_dev), os.minor(st.st_dev))
        self._ino = st.st_ino
        self._enabled = _madvise is not None

    def tick(self, n: int = 1) -> None:
        """Note ``n`` reads or writes (each may fault map pages in); trim when ``every``
        have passed since the last trim."""
        self._count += n
        if self._count >= self._every:
            self._count = 0
            self.trim()

    def _ranges(self) -> list[tuple[int, int]]:
        out = []
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or fields[1] != "r--s":
                    continue
                major, minor = fields[3].split(":")
                if int(fields[4]) != self._ino or (int(major, 16), int(minor, 16)) != self._dev:
                    continue
                start, end = fields[0].split("-")
                out.append((int(start, 16), int(end, 16)))
        return out

    def trim(self) -> None:
        """Unmap this environment's pages from the process (they stay in the page cache)."""
        if not self._enabled or _madvise is None:
            return
        with MAP_LOCK:
            try:
                ranges = self._ranges()
            except OSError:
                return
            for start, end in ranges:
                _madvise(start, end - start, _MADV_DONTNEED)
        self.trims += 1

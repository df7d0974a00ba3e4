"""How many simulated replicas keep their LMDB files open at once.

Every replica's environment holds four file descriptors (the map, LMDB's lock file, its
meta-sync descriptor, the directory's share lock), so one process reaches its
``RLIMIT_NOFILE`` at about 5,000 replicas on a 20,000-descriptor host. ``OpenReplicas``
keeps at most ``limit`` environments open and parks the least recently used one
(``storage.Env.park``: its files close, the ``Replica`` object and everything in memory
stay, and its next read or write reopens the files), an LRU cache of open files as a
database's table cache is (e.g. LevelDB's ``max_open_files``). Parking changes nothing
that is simulated: a parked replica answers exactly as an open one would, so a run's
report is the same bytes whatever the limit.

Parking frees LMDB's per-environment buffers (about 3 MiB of ``malloc``) and reopening
allocates them again; glibc raises its mmap threshold after such frees (mallopt(3),
``M_MMAP_THRESHOLD``'s dynamic adjustment), so those buffers move onto the heap and the
resident set grows by megabytes per reopen. :func:`pin_mmap_threshold` fixes the
threshold, which turns the adjustment off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from collections import OrderedDict
from typing import Any

#: File descriptors one open replica holds (see the module docstring).
FDS_PER_REPLICA = 4
#: Descriptors left for everything else (the interpreter, plots, the progress bar).
RESERVED_FDS = 512


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to its hard one (what ``ulimit -n``
    would do; ``memmesh simulate`` calls it); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


#: glibc's mallopt parameter number of ``M_MMAP_THRESHOLD`` (malloc.h)
_M_MMAP_THRESHOLD = -3


def pin_mmap_threshold(threshold: int = 256 * 1024) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (see the module docstring), so
    buffers freed by a parked environment go back to the system; False where there is
    no glibc ``mallopt``. ``memmesh simulate`` calls it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def default_limit() -> int:
    """As many open replicas as the soft descriptor limit allows."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, (soft - RESERVED_FDS) // FDS_PER_REPLICA)


def env_of(replica: Any) -> Any:
    """The storage ``Env`` under ``replica`` (or under a wrapper's ``inner`` replica)."""
    return getattr(replica, "inner", replica)._env


class OpenReplicas:
    """An LRU set of open replica environments, at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one replica must stay open")
        self.limit = limit
        self.parks = 0  # environments parked so far (each reopened on its next use)
        self._open: OrderedDict[str, Any] = OrderedDict()

    def touch(self, node_id: str, replica: Any) -> None:
        """``node_id``'s replica is about to be used: most recent; park the least
        recently used beyond the limit."""
        opened = self._open
        if node_id in opened:
            opened.move_to_end(node_id)
            return
        opened[node_id] = env_of(replica)
        if len(opened) > self.limit:
            _, env = opened.popitem(last=False)
            env.park()
            self.parks += 1

    def forget(self, node_id: str) -> None:
        """``node_id``'s replica was closed."""
        self._open.pop(node_id, None)

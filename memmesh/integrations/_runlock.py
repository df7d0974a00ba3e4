"""One node per data directory: a lock file held for as long as a node runs there.

Two nodes on one directory would share one replica id: they would refuse each other's
links as duplicates at every peer and overwrite each other's status file.  The runner
(and ``memmesh mcp`` when it runs a node) takes an exclusive ``flock`` on
``DATA/node.lock`` before opening the replica and holds it until the process ends; the
kernel drops it when the process dies, even by SIGKILL, so a crashed node never leaves
a stale lock behind (the pid-file trap).  The file holds the holder's pid for the error
message.  :func:`holder` tells ``memmesh status`` whether a node really runs there, so a
status file left behind by a dead node is never reported as a running node.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from memmesh.integrations._options import OperatorError

__all__ = ["LOCK_FILE", "NodeRunningError", "RunLock", "holder"]

LOCK_FILE = "node.lock"
#: Attempts (0.05 s apart) before a held lock counts as held: ``holder`` probes it for
#: microseconds, which must not make a starting node fail.
_ATTEMPTS = 20


class NodeRunningError(OperatorError):
    """Another node holds the data directory; ``pid`` is its process id (0: unknown)."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


class RunLock:
    """``with RunLock(data):`` holds ``data/node.lock`` (raises :class:`NodeRunningError`
    naming the holder's pid when another process holds it)."""

    def __init__(self, data: Path) -> None:
        self.path = data / LOCK_FILE
        self.data = data
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _ATTEMPTS - 1:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise NodeRunningError(
                        f"another memmesh node ({'pid ' + str(pid) if pid else 'pid unknown'})"
                        f" is running on {self.data}: stop it first, or give this node "
                        f"another --data", pid) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def holder(data: Path) -> int | None:
    """The pid of the node running on ``data`` (0: one runs, its pid unreadable), or
    None when no process holds the lock."""
    try:
        fd = os.open(data / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0

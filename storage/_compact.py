"""Compaction: rewrite a replica's environment without free pages, and the lock it needs.

LMDB is copy-on-write and never returns freed pages to the file system; a forgotten
text survives in them until they are reused (issue 16 counted 27 copies of one canary
in a writer's ``data.mdb``). :func:`compact` writes a compacting copy
(``mdb_env_copy2`` with ``MDB_CP_COMPACT``: live pages only) into a folder inside the
data directory (one file system), fsyncs it and renames it over ``data.mdb``. Swapping
the file under another process's memory map would corrupt that process's view, so
every :class:`._env.Env` holds a shared ``flock`` on ``replica.lock`` while open and
:func:`compact` needs it exclusively, refusing (:class:`ReplicaBusyError`) when it is
held; an open that starts during a compaction waits for it.
"""

from __future__ import annotations

import fcntl
import os
import shutil

import lmdb

from ._errors import ReplicaBusyError, StorageError
from ._keyslots import fsync_path

__all__ = ["LOCK_FILE", "compact", "share_lock"]

#: The lock file every open environment holds shared (``flock``) in the data directory.
LOCK_FILE = "replica.lock"
_DATA = "data.mdb"
_STAGING = ".compacting"


def share_lock(path: str) -> int:
    """Take the directory's lock shared (waiting out a compaction); the open descriptor,
    to close when the environment closes."""
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


def compact(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Rewrite the replica at ``path`` without free pages; ``(bytes before, after)``.
    Needs no at-rest key (pages are copied as they are). Raises
    :class:`ReplicaBusyError` while any process has the replica open."""
    root = os.fspath(path)
    data = os.path.join(root, _DATA)
    if not os.path.isfile(data):
        raise StorageError(f"no replica at {root!r} (no {_DATA})")
    fd = os.open(os.path.join(root, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplicaBusyError(f"{root!r} is open in another process (a node or an"
                                   " agent): stop it, then compact") from None
        before = os.path.getsize(data)
        staging = os.path.join(root, _STAGING)
        shutil.rmtree(staging, ignore_errors=True)
        os.mkdir(staging)
        env = lmdb.open(root, max_dbs=32, subdir=True, lock=True)
        try:
            env.copy(staging, compact=True)
        finally:
            env.close()
        copy = os.path.join(staging, _DATA)
        fsync_path(copy)
        os.replace(copy, data)
        fsync_path(root)
        os.rmdir(staging)
        return before, os.path.getsize(data)
    finally:
        os.close(fd)  # releases the lock



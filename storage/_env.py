"""The LMDB environment under a replica: named sub-databases, transactions, map growth.

Every write path shares LMDB's care (FIELD-NOTES, py-lmdb docs): a write is a
*replayable function* ``fn(txn) -> result`` that :meth:`Env.write` runs and, on
``MapFullError``, aborts, doubles the map and runs again (a batch replays all its
functions), so write functions read everything they depend on from the transaction.
A map grown by another process is adopted (``MapResizedError``). ``durable=True``
fsyncs each commit; ``durable=False`` is explicit write-behind until :meth:`Env.flush`.
Every 512 reads or writes the map's pages are dropped from the resident set
(:mod:`._rss`), so RSS stays bounded however much of a large replica is touched.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, cast

import lmdb

from ._compact import share_lock
from ._rss import MapTrimmer

T = TypeVar("T")

#: (times the environment was opened by this object, LMDB transaction id): a reopened
#: directory (after park(), possibly restored meanwhile) never matches an older mark.
CommitMark = tuple[int, int]

#: Names of the sub-databases (see docs/internals.md section 2 for their layouts).
DB_NAMES: tuple[str, ...] = (
    "meta",  # replica id, dot counter, HLC, watermarks, digest buckets, journal bounds
    "state",  # bucket(1) + key -> canonical key-state bytes
    "origin",  # prio(1) + origin + 0x00 + counter(8) + key -> b""   (the delta log)
    "scope",  # field(1) + value + 0x00 + key -> b""
    "expiry",  # expires_ms(8) + key -> b""
    "conflict",  # key -> b""  (live memories with several standing versions)
    "history",  # key + 0x00 + seq(8) -> event
    "journal",  # seq(8) -> change
    "aux",  # namespace + 0x00 + key -> value (never replicated)
    "proof",  # bucket(1) + key -> the proofs of the key's dots (signed writes)
    "cred",  # credential id(16) -> credential bytes (the origins of stored proofs)
    "revoke",  # credential id(16) -> the earliest revocation of it held (gossiped)
    "hidden",  # bucket(1) + key -> dots audit(hide=True) hides from reads (local only)
)

DEFAULT_MAP_SIZE = 64 * 1024 * 1024
_GROW_LIMIT = 1 << 40  # 1 TiB: beyond this a MapFullError is genuinely fatal


class Sealer(Protocol):
    """Seals the values of some sub-databases at rest (:mod:`._at_rest`)."""

    dbs: frozenset[str]

    def seal(self, txn: Txn, db: str, key: bytes, value: bytes) -> bytes: ...

    def open(self, txn: Txn, db: str, key: bytes, stored: bytes) -> bytes | None: ...

    def shred(self, txn: Txn, skey: bytes) -> None: ...

    def finish(self, txn: Txn) -> None: ...

    def flush(self) -> None: ...

    def copy_to(self, directory: str) -> None: ...

    def close(self) -> None: ...


class Txn:
    """One write transaction plus the sub-database handles and per-transaction scratch.

    ``scratch`` holds accumulators (e.g. digest deltas) that a write function folds into
    the transaction before commit; it is discarded with the transaction on abort, which
    keeps replays exact. ``deferred`` holds rows queued by :meth:`defer_rows`, written
    by one cursor call per sub-database before anything reads or changes that
    sub-database through this object, and at the latest just before commit.
    ``sealer`` (an encrypted replica's, else None) seals the values of its sub-databases
    on every put and opens them on every get and prefix scan (a row whose data key was
    destroyed reads as absent); ``txn.txn`` and :meth:`cursor` see sealed bytes.
    """

    __slots__ = ("counters", "dbs", "deferred", "dirty", "pre_commit", "scratch", "sealer",
                 "tick", "txn")

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any],
                 tick: Callable[..., None] = lambda n=1: None,
                 sealer: Sealer | None = None) -> None:
        self.txn = txn
        self.sealer = sealer
        self.dbs = dbs
        self.scratch: dict[str, Any] = {}
        self.pre_commit: list[Callable[[Txn], None]] = []
        self.tick = tick  # counts reads and writes for the map trimmer (see _rss.py)
        self.deferred: dict[str, list[tuple[bytes, bytes]]] = {}
        self.counters: dict[bytes, int] = {}  # meta counters read or set in this txn
        self.dirty: set[bytes] = set()  # counters to write back before commit

    def defer_rows(self, db: str, rows: list[tuple[bytes, bytes]]) -> None:
        """Queue rows to put into ``db`` later (see the class doc): a batch of many small
        writes then costs one C-level cursor call per sub-database instead of a Python
        call per row. Any access to ``db`` through this object writes them first, so
        reads and later changes see them as if they had been put at once (only raw
        ``txn.txn`` calls would not: never defer rows of a sub-database read that way)."""
        if not rows:
            return
        if not self.deferred:
            self.pre_commit.append(_flush_deferred)
        pending = self.deferred.get(db)
        if pending is None:
            self.deferred[db] = list(rows)
        else:
            pending.extend(rows)

    def settle(self, db: str) -> None:
        """Write the rows deferred for ``db`` now."""
        rows = self.deferred.pop(db, None)
        if rows:
            self._put_rows(db, rows)

    def get(self, db: str, key: bytes) -> bytes | None:
        if self.deferred:
            self.settle(db)
        value = self.txn.get(key, db=self.dbs[db])
        self.tick()
        if value is None:
            return None
        sealer = self.sealer
        if sealer is not None and db in sealer.dbs:
            return sealer.open(self, db, key, bytes(value))
        return bytes(value)

    def put(self, db: str, key: bytes, value: bytes) -> None:
        if self.deferred:
            self.settle(db)
        sealer = self.sealer
        if sealer is not None and db in sealer.dbs:
            value = sealer.seal(self, db, key, value)
        self.txn.put(key, value, db=self.dbs[db])
        self.tick()

    def put_rows(self, db: str, rows: list[tuple[bytes, bytes]]) -> None:
        """Put many ``(key, value)`` rows: one C-level cursor call instead of a Python
        call per row (a single row goes through :meth:`put`, which is cheaper for one)."""
        if self.deferred:
            self.settle(db)
        self._put_rows(db, rows)

    def _put_rows(self, db: str, rows: list[tuple[bytes, bytes]]) -> None:
        sealer = self.sealer
        if sealer is not None and db in sealer.dbs:
            rows = [(key, sealer.seal(self, db, key, value)) for key, value in rows]
        if len(rows) == 1:
            self.txn.put(rows[0][0], rows[0][1], db=self.dbs[db])
        elif rows:
            self.txn.cursor(db=self.dbs[db]).putmulti(rows)
        self.tick(len(rows))

    def delete(self, db: str, key: bytes) -> bool:
        if self.deferred:
            self.settle(db)
        if db == "state":
            self.shred(key)
        return bool(self.txn.delete(key, db=self.dbs[db]))

    def shred(self, skey: bytes) -> None:
        """Destroy the data key of the state key ``skey`` as this transaction commits
        (an encrypted replica; nothing otherwise): called before a key is forgotten or
        removed, so no sealed copy of its content opens again."""
        if self.sealer is not None:
            self.sealer.shred(self, skey)

    def cursor(self, db: str) -> lmdb.Cursor:
        if self.deferred:
            self.settle(db)
        return self.txn.cursor(db=self.dbs[db])

    def prefix(self, db: str, prefix: bytes, start: bytes = b""
               ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` pairs whose key starts with ``prefix``, in key order,
        from the first key >= ``start`` (default: the first under ``prefix``)."""
        if self.deferred:
            self.settle(db)
        cur = self.txn.cursor(db=self.dbs[db])
        if not cur.set_range(max(prefix, start)):
            return
        tick = self.tick
        sealer = self.sealer if self.sealer is not None and db in self.sealer.dbs else None
        rows = cast(Iterator[tuple[bytes, bytes]], iter(cur))  # buffers=False: bytes
        for key, value in rows:
            if not key.startswith(prefix):
                return
            tick()
            if sealer is None:
                yield bytes(key), bytes(value)
                continue
            plain = sealer.open(self, db, bytes(key), bytes(value))
            if plain is not None:
                yield bytes(key), plain

    def counter(self, name: bytes) -> int:
        """A non-negative integer kept in ``meta`` under ``name``, cached for this txn."""
        value = self.counters.get(name)
        if value is None:
            raw = self.txn.get(name, db=self.dbs["meta"])
            value = self.counters[name] = int.from_bytes(raw, "big") if raw else 0
        return value

    def set_counter(self, name: bytes, value: int) -> None:
        """Set a ``meta`` counter; written back once, just before commit."""
        if not self.dirty:
            self.pre_commit.append(_flush_counters)
        self.counters[name] = value
        self.dirty.add(name)

    def finish(self) -> None:
        """Run the registered pre-commit hooks (each at most once per attempt)."""
        hooks, self.pre_commit = self.pre_commit, []
        for hook in hooks:
            hook(self)
        if self.sealer is not None:
            self.sealer.finish(self)  # last: nothing after it can fail but the commit


def _flush_deferred(txn: Txn) -> None:
    for db in list(txn.deferred):
        txn.settle(db)


def _flush_counters(txn: Txn) -> None:
    dirty, txn.dirty = txn.dirty, set()
    for name in dirty:
        txn.put("meta", name, txn.counters[name].to_bytes(8, "big"))


class Env:
    """An LMDB environment with the replica's named sub-databases."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True,
                 map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self.durable = durable
        #: seals sub-databases at rest (set by :func:`._at_rest.attach`), else None
        self.sealer: Sealer | None = None
        self._trimmer = MapTrimmer(os.path.join(self.path, "data.mdb"))
        self._map_size = map_size
        self.dbs: dict[str, Any] = {}
        self._local = threading.local()
        self._closed = False
        self.parked = False  # files closed by park(), reopened on the next use
        self._opened = 0  # times the files were opened: a commit mark's first half
        #: called after every committed write transaction (a batch: once); must not raise
        self.after_commit: list[Callable[[], None]] = []
        self._open()

    def _open(self) -> None:
        """Take the directory's share lock, map the environment, open the sub-databases."""
        self._lock_fd = share_lock(self.path)  # held while open: see _compact.py
        try:
            self._env = self._trimmer.track(lambda: lmdb.open(
                self.path,
                map_size=self._map_size,
                max_dbs=len(DB_NAMES) + 2,
                subdir=True,
                sync=self.durable,
                metasync=self.durable,
                readahead=False,
                max_readers=256,
                lock=True,
            ))
        except BaseException:
            os.close(self._lock_fd)
            raise
        # every unmap of the map happens under rss.MAP_LOCK, an unclosed Env's included
        self._finalizer = weakref.finalize(self, _close_env, self._env, self._trimmer,
                                           self._lock_fd)
        self._run(lambda: self._open_dbs())
        self._opened += 1
        self.parked = False

    def park(self) -> None:
        """Close the environment's files (the LMDB map, its lock file, the share lock)
        but keep this object: the next read or write reopens them, seeing exactly what
        was committed. For one process holding more replicas than it has file
        descriptors (the simulator: four per environment); not inside a batch."""
        if self._closed or self.parked:
            return
        if getattr(self._local, "batch", None) is not None:
            raise RuntimeError("park() inside a batch")
        self._map_size = self.map_size  # as grown
        self._finalizer()
        self.parked = True

    def _unpark(self) -> None:
        if self._closed:
            raise lmdb.Error("the environment is closed")
        self._open()

    def _committed(self) -> None:
        for hook in self.after_commit:
            hook()

    def _open_dbs(self) -> None:
        with self._env.begin(write=True) as txn:
            for name in DB_NAMES:
                self.dbs[name] = self._env.open_db(name.encode(), txn=txn, create=True)

    # -- map management -------------------------------------------------------------

    def _run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` adopting a map grown by another process, growing ours when full."""
        while True:
            try:
                return fn()
            except lmdb.MapResizedError:
                self._trimmer.track(lambda: self._env.set_mapsize(0))
            except lmdb.MapFullError:
                self._grow()

    def _grow(self) -> None:
        size = int(self._env.info()["map_size"])
        if size >= _GROW_LIMIT:
            raise lmdb.MapFullError("LMDB map reached its growth limit")
        self._trimmer.track(lambda: self._env.set_mapsize(size * 2))

    @property
    def map_size(self) -> int:
        if self.parked:
            return self._map_size
        return int(self._env.info()["map_size"])

    # -- commit marks ---------------------------------------------------------------

    def last_commit(self) -> CommitMark | None:
        """The mark of the last transaction committed to the directory by anyone (this
        object, another on the same directory, another process), read from LMDB's meta
        page with no transaction and no lock (``mdb_env_info``, about a microsecond).
        None where it cannot be told so: parked, or inside this thread's batch (whose
        uncommitted writes its reads see). Compare it with a :meth:`read_commit` taken
        before reading: equal means nothing was committed since that read."""
        if self.parked or getattr(self._local, "batch", None) is not None:
            return None
        return self._opened, int(self._env.info()["last_txnid"])

    def read_commit(self) -> CommitMark | None:
        """The mark of the last commit a read transaction begun now sees (it opens one):
        every later read sees at least this much. None inside this thread's batch.

        LMDB writes the meta page a moment before it publishes the commit to new readers,
        so :meth:`last_commit` may run one ahead of this; never behind. Taking this mark
        (not :meth:`last_commit`) before a catch-up is what makes the comparison safe."""
        if getattr(self._local, "batch", None) is not None:
            return None
        with self.read() as txn:
            return self._opened, int(txn.txn.id())

    # -- reads ----------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Txn]:
        """A short read transaction (or the open batch's write transaction)."""
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None and batch.txn is not None:
            yield batch.txn
            return
        if self.parked:
            self._unpark()
        txn = self._run(lambda: self._env.begin(write=False, buffers=False))
        try:
            yield Txn(txn, self.dbs, self._trimmer.tick, self.sealer)
        finally:
            txn.abort()

    # -- writes ---------------------------------------------------------------------

    def write(self, fn: Callable[[Txn], T]) -> T:
        """Run the replayable write function ``fn`` in a committed transaction.

        Inside :meth:`batch` the function joins the batch's transaction and becomes durable
        when the batch commits.
        """
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            return batch.run(fn)
        if self.parked:
            self._unpark()
        while True:
            txn = self._run(lambda: self._env.begin(write=True, buffers=False))
            wrapped = Txn(txn, self.dbs, self._trimmer.tick, self.sealer)
            try:
                result = fn(wrapped)
                wrapped.finish()
                txn.commit()
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
                continue
            except BaseException:
                txn.abort()
                raise
            self._committed()
            return result

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group every write in the ``with`` block into one transaction (one fsync).

        Nested batches join the outermost one. Reads inside the block see the batch's own
        uncommitted writes. If the block raises, nothing of it is committed.
        """
        outer: _Batch | None = getattr(self._local, "batch", None)
        if outer is not None:
            yield
            return
        batch = _Batch(self)
        self._local.batch = batch
        try:
            yield
        except BaseException:
            self._local.batch = None
            batch.abort()
            raise
        self._local.batch = None
        batch.commit()

    def flush(self) -> None:
        """Force buffered commits to disk (meaningful in write-behind mode)."""
        if self.parked:
            return  # closing the environment flushed it
        self._env.sync(True)
        if self.sealer is not None:
            self.sealer.flush()

    def copy(self, path: str | os.PathLike[str]) -> None:
        """A consistent, compacted copy of the environment into the new or empty
        directory ``path`` (LMDB ``mdb_env_copy2`` with ``MDB_CP_COMPACT``: one read
        transaction, so writers, this process's or another's, go on meanwhile)."""
        os.makedirs(path, exist_ok=True)
        if self.parked:
            self._unpark()
        self._env.copy(os.fspath(path), compact=True)
        if self.sealer is not None:  # after the pages: keys destroyed meanwhile stay so
            self.sealer.copy_to(os.fspath(path))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._finalizer()
            if self.sealer is not None:
                self.sealer.close()

    def stat(self) -> dict[str, Any]:
        if self.parked:
            self._unpark()
        return dict(self._env.info()) | dict(self._env.stat())


def _close_env(env: lmdb.Environment, trimmer: MapTrimmer, lock_fd: int) -> None:
    trimmer.untrack(env.close)
    os.close(lock_fd)


class _Batch:
    """The write functions of one ``with env.batch():`` block, replayable as a whole."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.fns: list[Callable[[Txn], Any]] = []
        self.txn: Txn | None = None

    def _begin(self) -> Txn:
        if self.env.parked:
            self.env._unpark()
        raw = self.env._run(lambda: self.env._env.begin(write=True, buffers=False))
        self.txn = Txn(raw, self.env.dbs, self.env._trimmer.tick, self.env.sealer)
        return self.txn

    def run(self, fn: Callable[[Txn], T]) -> T:
        while True:
            txn = self.txn if self.txn is not None else self._begin()
            try:
                result = fn(txn)
            except lmdb.MapFullError:
                self._replay_after_growth()
                continue
            self.fns.append(fn)
            return result

    def _replay_after_growth(self) -> None:
        while True:
            assert self.txn is not None
            self.txn.txn.abort()
            self.txn = None
            self.env._grow()
            txn = self._begin()
            try:
                for fn in self.fns:
                    fn(txn)
                return
            except lmdb.MapFullError:
                continue

    def commit(self) -> None:
        if self.txn is None:
            return
        while True:
            txn = self.txn
            assert txn is not None
            try:
                txn.finish()
                txn.txn.commit()
                self.txn = None
            except lmdb.MapFullError:
                self._replay_after_growth()
                continue
            self.env._committed()
            return

    def abort(self) -> None:
        if self.txn is not None:
            self.txn.txn.abort()
            self.txn = None

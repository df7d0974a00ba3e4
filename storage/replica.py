"""``Replica``: one agent's durable replica of the shared memory, on LMDB.

It ties the parts together: the environment (:mod:`.env`), the memory model
(:mod:`.memory`), reads (:mod:`.reads`), conflict bookkeeping (:mod:`.conflicts`), sync
(:mod:`.sync`), the change journal (:mod:`.journal`), TTL collection and the local-only
auxiliary store.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from memmesh.crdt import InvalidArgumentError
from memmesh.crdt.dot import ORIGIN_SEP, check_replica

from . import journal
from .conflicts import ConflictOps
from .env import DEFAULT_MAP_SIZE, Env, Txn
from .errors import ReplicaIdMismatchError
from .incarnation import MAX_BASE_LEN, new_incarnation
from .keycodec import decode
from .memory import MemoryOps, new_memory_id
from .reads import ReadOps
from .records import ChangeBatch
from .sync import SyncOps

__all__ = ["Replica"]

_RID = b"rid"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Replica(MemoryOps, ReadOps, ConflictOps, SyncOps):
    """A durable replica of the memory CRDTs (see ``docs/internals.md`` section 2).

    Open it with :meth:`open`; use it as a context manager or call :meth:`close`.
    Safe to open from several processes on one host at once (LMDB's lock file); each
    sees the others' committed writes. One ``Replica`` object may be shared by threads.
    """

    def __init__(self, env: Env, replica_id: str, *, clock: Callable[[], int],
                 max_drift_ms: int, id_factory: Callable[[], str] | None = None,
                 incarnation_factory: Callable[[], str] | None = None) -> None:
        self._env = env
        self._new_id = id_factory or new_memory_id
        self._incarnation_factory = incarnation_factory or new_incarnation
        self._origin_lock = threading.Lock()
        self.replica_id = replica_id
        self._clock = clock
        self.max_drift_ms = max_drift_ms

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, replica_id: str | None = None,
             durable: bool = True, max_drift_ms: int = 600_000,
             clock: Callable[[], int] | None = None, map_size: int = DEFAULT_MAP_SIZE,
             id_factory: Callable[[], str] | None = None,
             incarnation_factory: Callable[[], str] | None = None, **options: Any) -> Replica:
        """Open (creating if needed) the replica stored at directory ``path``.

        The replica id is created once (random, 16 hex digits) and persisted; passing
        another ``replica_id`` than the stored one raises. ``durable=False`` selects
        write-behind (commits are not fsynced until :meth:`flush`). ``clock`` returns
        wall-clock milliseconds (tests inject one). ``id_factory`` mints the ids of new
        memories and sets (default: random 128-bit hex, like ``uuid4().hex``); simulations
        pass a seeded one so runs repeat exactly. Ids must be unique fleet-wide.

        The replica id names the member (certificate, HELLO, ACLs, arbiter election); the
        dots this object writes are minted under ``"<replica id>#<incarnation>"`` with an
        incarnation drawn at its first write (:mod:`memmesh.storage.incarnation`), so a
        copied or restored directory never reuses a dot. ``incarnation_factory`` draws it
        (default: 8 random base32 characters); simulations pass a seeded one. A replica
        id must not contain ``#`` and has at most 119 characters.
        """
        if options:
            raise InvalidArgumentError(f"unknown options {sorted(options)}")
        if replica_id is not None:
            check_replica(replica_id)
            if "\x00" in replica_id or ORIGIN_SEP in replica_id \
                    or len(replica_id) > MAX_BASE_LEN:
                raise InvalidArgumentError(
                    f"replica id must not contain NUL or {ORIGIN_SEP!r} and must have at"
                    f" most {MAX_BASE_LEN} characters (room for an incarnation)")
        if incarnation_factory is not None and not callable(incarnation_factory):
            raise InvalidArgumentError("incarnation_factory must be callable")
        if type(max_drift_ms) is not int or max_drift_ms < 0:
            raise InvalidArgumentError("max_drift_ms must be a non-negative int")
        env = Env(path, durable=durable, map_size=map_size)
        try:
            def ensure_id(txn: Txn) -> str:
                stored = txn.get("meta", _RID)
                if stored is not None:
                    rid = stored.decode()
                    if replica_id is not None and replica_id != rid:
                        raise ReplicaIdMismatchError(
                            f"{os.fspath(path)!r} holds replica {rid!r}, not {replica_id!r}")
                    return rid
                rid = replica_id or uuid.uuid4().hex[:16]
                txn.put("meta", _RID, rid.encode())
                return rid

            with env.read() as txn:
                raw = txn.get("meta", _RID)
            if raw is not None and (replica_id is None or raw.decode() == replica_id):
                rid = raw.decode()
            else:
                rid = env.write(ensure_id)
            if ORIGIN_SEP in rid:
                raise InvalidArgumentError(
                    f"{os.fspath(path)!r} holds replica id {rid!r}, which contains"
                    f" {ORIGIN_SEP!r}: it cannot name dot origins unambiguously")
            replica = cls(env, rid, clock=clock or _wall_ms, max_drift_ms=max_drift_ms,
                          id_factory=id_factory, incarnation_factory=incarnation_factory)
            replica._at_open()
        except BaseException:
            env.close()
            raise
        return replica

    # -- lifecycle ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._env.path

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """``with replica.batch():`` many writes, one transaction, one fsync."""
        with self._env.batch():
            yield

    def flush(self) -> None:
        """Force write-behind commits to disk."""
        self._env.flush()

    def __repr__(self) -> str:
        return f"Replica({self.path!r}, replica_id={self.replica_id!r})"

    # -- journal --------------------------------------------------------------------

    def journal_seq(self) -> int:
        """The sequence number of the latest journal entry (0 when empty)."""
        with self._env.read() as txn:
            return journal.last_seq(txn)

    def changes_since(self, seq: int, limit: int = 1000) -> ChangeBatch:
        """Journal entries after ``seq`` (at most ``limit``); see :mod:`.journal`."""
        if type(seq) is not int or seq < 0 or type(limit) is not int or limit < 1:
            raise InvalidArgumentError("seq must be an int >= 0 and limit an int >= 1")
        with self._env.read() as txn:
            return journal.changes_since(txn, seq, limit)

    # -- TTL collection -------------------------------------------------------------

    def collect_expired(self, now_ms: int | None = None, *, limit: int = 10_000) -> int:
        """Remove memories whose TTL has passed (state, indexes, history); return how many.

        Every replica derives the same ``expires_at`` from the write's hybrid timestamp,
        so they all drop the same memories at the same wall time.
        """
        now = self._clock() if now_ms is None else now_ms
        bound = (now + 1).to_bytes(8, "big")
        with self._env.read() as txn:
            due = [k for k, _ in txn.prefix("expiry", b"") if k[:8] < bound][:limit]
            if not due:
                return 0

        def write(txn: Txn) -> int:
            count = 0
            for ikey in due:
                key = ikey[8:].decode()
                skey, raw, state = self._load(txn, key)
                if state is None or raw is None or state.header.expires_at is None \
                        or state.header.expires_at > now:
                    continue
                self._remove(txn, key, skey, raw, state)
                count += 1
            return count

        return self._env.write(write)

    # -- local-only auxiliary storage -----------------------------------------------

    @staticmethod
    def _aux_key(namespace: str, key: bytes) -> bytes:
        if type(namespace) is not str or not namespace or "\x00" in namespace:
            raise InvalidArgumentError("namespace must be a non-empty str without NUL")
        if type(key) is not bytes or not key or len(key) > 400:
            raise InvalidArgumentError("aux key must be 1..400 bytes")
        return namespace.encode() + b"\x00" + key

    def aux_get(self, namespace: str, key: bytes) -> bytes | None:
        """A local-only value (never replicated), e.g. a cached embedding."""
        akey = self._aux_key(namespace, key)
        with self._env.read() as txn:
            return txn.get("aux", akey)

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None:
        akey = self._aux_key(namespace, key)
        if type(value) is not bytes:
            raise InvalidArgumentError("aux value must be bytes")
        self._env.write(lambda txn: txn.put("aux", akey, value))

    def stats(self) -> dict[str, Any]:
        """Counts of keys and environment figures (map size, pages)."""
        with self._env.read() as txn:
            keys = txn.txn.stat(self._env.dbs["state"])["entries"]
        return {"keys": keys, "map_size": self._env.map_size, "replica_id": self.replica_id}

    def _decode_all(self) -> Iterator[Any]:  # pragma: no cover - debugging aid
        with self._env.read() as txn:
            for _, raw in txn.prefix("state", b""):
                yield decode(raw, check_canonical=False)

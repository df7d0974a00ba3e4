"""``Replica``: one agent's durable replica of the shared memory, on LMDB.

A facade over parts that each hold only what they need (passed in, never inherited):
the environment (:mod:`._env`), identity and clocks (:mod:`._stamps`), the memory model
(:mod:`._memory`), reads (:mod:`._reads`), conflict listing (:mod:`._conflicts`), sync
(:mod:`._sync`), the change journal (:mod:`._journal`) and local-only aux (:mod:`._aux`).
Every write of a key goes through one path (:mod:`._keystore`).
"""

from __future__ import annotations

import builtins
import logging
import os
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from memmesh.crdt import ORIGIN_SEP, Dot, InvalidArgumentError, Timestamp, check_replica
from memmesh.crdt.keystate import DEFAULT_KEEP
from memmesh.trust import MemberIdentity, Revocation, TrustStore

from . import _at_rest as at_rest
from . import _layout as layout
from ._audit import AuditReport, audit
from ._aux import Aux
from ._changes import ChangeEvent, WatchFilter
from ._conflicts import Conflicts
from ._env import DEFAULT_MAP_SIZE, CommitMark, Env, Txn
from ._errors import NoTrustStoreError, ReplicaIdMismatchError
from ._incarnation import MAX_BASE_LEN, new_incarnation
from ._journal import Journal
from ._memory import Memory, check_keep, new_memory_id
from ._reads import AsOfView, Reads, scope_filters
from ._records import ApplyResult, ChangeBatch, Event, MemoryRecord, Version
from ._retiring import Retiring
from ._revocations import Revocations, parse_revocation
from ._signal import CommitSignal
from ._signing import Signing
from ._stamps import Stamps
from ._sync import Sync
from ._view import ScopedView
from ._watch import Watch
from .wire import PeerScope

__all__ = ["Replica"]

log = logging.getLogger(__name__)

_RID = b"rid"
_F = TypeVar("_F", bound=Callable[..., Any])


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _doc(part_method: Callable[..., Any]) -> Callable[[_F], _F]:
    """Give a delegating method the docstring of the part's method it calls."""
    def copy(method: _F) -> _F:
        method.__doc__ = part_method.__doc__
        return method
    return copy


class Replica:
    """A durable replica of the memory CRDTs (see ``docs/internals.md`` section 2).

    Open it with :meth:`open`; use it as a context manager or call :meth:`close`.
    Safe to open from several processes on one host at once (LMDB's lock file); each
    sees the others' committed writes. One ``Replica`` object may be shared by threads.
    """

    def __init__(self, env: Env, replica_id: str, *, clock: Callable[[], int],
                 max_drift_ms: int, id_factory: Callable[[], str] | None = None,
                 incarnation_factory: Callable[[], str] | None = None,
                 history_limit: int = DEFAULT_KEEP, identity: MemberIdentity | None = None,
                 trust: TrustStore | None = None, retire_after: int | None = None) -> None:
        self.replica_id = replica_id
        if identity is not None and trust is None:
            trust = TrustStore(identity.authority)
        self.identity = identity
        self.trust = trust
        signing = None if identity is None or trust is None else Signing(identity, trust)
        self.max_drift_ms = max_drift_ms
        self._env = env
        self._stamps = Stamps(replica_id, clock=clock, max_drift_ms=max_drift_ms,
                              incarnation_factory=incarnation_factory or new_incarnation)
        self._memory = Memory(env, self._stamps, id_factory or new_memory_id, history_limit,
                              signing)
        self._reads = Reads(env, clock)
        self._conflicts = Conflicts(env, clock)
        self._revocations = Revocations(trust)
        self._sync = Sync(env, self._stamps, self._memory.collect_expired, trust,
                          self._revocations)
        self._retiring = Retiring(env, self._stamps)
        self._retire_after = retire_after
        self._next_unseen_scan = 0  # clock ms of the next retire_after scan
        self._journal = Journal(env)
        self._aux = Aux(env)
        self._signal = CommitSignal()  # wakes watchers after each commit (see watch)
        env.after_commit.append(self._signal.fire)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, replica_id: str | None = None,
             durable: bool = True, max_drift_ms: int = 600_000,
             clock: Callable[[], int] | None = None, map_size: int = DEFAULT_MAP_SIZE,
             id_factory: Callable[[], str] | None = None,
             incarnation_factory: Callable[[], str] | None = None,
             history_limit: int = DEFAULT_KEEP, identity: MemberIdentity | None = None,
             trust: TrustStore | None = None, at_rest_key: bytes | None = None,
             retire_after: int | None = None, **options: Any) -> Replica:
        """Open (creating if needed) the replica stored at directory ``path``.

        The replica id is created once (random, 16 hex digits) and persisted; passing
        another ``replica_id`` than the stored one raises. ``durable=False`` selects
        write-behind (commits are not fsynced until :meth:`flush`). ``clock`` returns
        wall-clock milliseconds (tests inject one). ``id_factory`` mints the ids of new
        memories and sets (default: random 128-bit hex, like ``uuid4().hex``); simulations
        pass a seeded one so runs repeat exactly. Ids must be unique fleet-wide.

        The replica id names the member (certificate, HELLO, ACLs, arbiter election); the
        dots this object writes are minted under ``"<replica id>#<incarnation>"`` with an
        incarnation drawn at its first write (:mod:`memmesh.storage._incarnation`), so a
        copied or restored directory never reuses a dot. ``incarnation_factory`` draws it
        (default: 8 random base32 characters); simulations pass a seeded one. A replica
        id must not contain ``#`` and has at most 119 characters.

        ``history_limit`` bounds the timeline of each memory this replica creates: the
        ADD, the events of the versions still standing (policy "mv") and the newest
        ``history_limit - 1`` other events (fixed in the memory when it is created, so
        every replica compacts it alike; docs/internals.md, "The timeline").
        ``history_limit=0`` keeps only the events of the standing versions (no ADD once
        superseded, no NOOP, DELETE or superseded update): the smallest sync payload,
        no past for ``history``/``as_of``.

        ``identity`` (a :class:`memmesh.trust.MemberIdentity`) signs every local write
        (one Ed25519 signature per commit chunk) and refuses local writes outside its
        credential's write grant, roles and actors (``PermissionDeniedError``; a write
        that names no actor or role claims the credential's when it names exactly
        one). The replica id must be the credential's (a fresh directory takes it;
        another stored id raises ``ReplicaIdMismatchError``). ``trust`` (default with
        an identity: ``TrustStore(identity.authority)``) makes ``sync_apply`` check
        every received write's proof and its origin's grants (docs/internals.md,
        "Signed writes"); keys that fail are refused one by one. The revocations this
        directory holds are loaded into it (see :meth:`add_revocation`).

        ``at_rest_key`` (32 bytes, e.g. from :func:`at_rest_key_file`) encrypts the
        replica at rest: texts, metadata and every other content row are sealed with
        AES-GCM under a data key per memory, destroyed by ``forget`` (docs/internals.md,
        "Encryption at rest"). It is fixed when the replica is created: opening an
        encrypted replica without it or with another key, or a plaintext replica with
        one, raises :class:`AtRestKeyError` and changes nothing.

        ``retire_after`` (milliseconds, default None: never) retires, from
        ``sync_summary`` at most every quarter of it, the origins whose latest event held
        here is older than that (:meth:`retire_unseen`). This directory's earlier
        incarnations are retired at their counters once a peer holds them that far
        (docs/internals.md, "Retired origins").
        """
        if options:
            raise InvalidArgumentError(f"unknown options {sorted(options)}")
        if identity is not None and not isinstance(identity, MemberIdentity):
            raise InvalidArgumentError("identity must be a MemberIdentity or None")
        if trust is not None and not isinstance(trust, TrustStore):
            raise InvalidArgumentError("trust must be a TrustStore or None")
        if identity is not None:
            if replica_id is not None and replica_id != identity.replica_id:
                raise ReplicaIdMismatchError(
                    f"replica_id {replica_id!r} is not the identity's"
                    f" {identity.replica_id!r}")
            replica_id = identity.replica_id
        if replica_id is not None:
            check_replica(replica_id)
            if "\x00" in replica_id or ORIGIN_SEP in replica_id \
                    or len(replica_id) > MAX_BASE_LEN:
                raise InvalidArgumentError(
                    f"replica id must not contain NUL or {ORIGIN_SEP!r} and must have at"
                    f" most {MAX_BASE_LEN} characters (room for an incarnation)")
        if incarnation_factory is not None and not callable(incarnation_factory):
            raise InvalidArgumentError("incarnation_factory must be callable")
        if retire_after is not None and (type(retire_after) is not int or retire_after <= 0):
            raise InvalidArgumentError("retire_after must be a positive int (ms) or None")
        if type(max_drift_ms) is not int or max_drift_ms < 0:
            raise InvalidArgumentError("max_drift_ms must be a non-negative int")
        check_keep(history_limit)
        at_rest.check_openable(path, at_rest_key)
        env = Env(path, durable=durable, map_size=map_size)
        try:
            at_rest.attach(env, at_rest_key)
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
                          id_factory=id_factory, incarnation_factory=incarnation_factory,
                          history_limit=history_limit, identity=identity, trust=trust,
                          retire_after=retire_after)
            if layout.upgrade(env):
                log.warning("replica %s: indexes rebuilt for storage layout %d", rid,
                            layout.LAYOUT)
            with env.read() as txn:  # the revocations held: refused in local writes too
                replica._revocations.refresh(txn)
            replica._stamps.restart_if_ahead(env)
        except BaseException:
            env.close()
            raise
        return replica

    # -- lifecycle ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._env.path

    def close(self) -> None:
        self._signal.close()  # open watches end
        self._env.close()

    def backup(self, path: str | os.PathLike[str]) -> None:
        """Write a consistent, compacted copy of this replica into the new or empty
        directory ``path``, safe while others (a running node) write. Opening the copy
        mints under a new incarnation like any open, so a restored backup never reuses
        a dot (docs/faulty-members.md, "Restored and copied replicas"). An encrypted
        replica's copy takes the key slots live when it ends: a memory forgotten
        before (or while) it is taken cannot be decrypted from it."""
        self._env.copy(path)

    @property
    def encrypted_at_rest(self) -> bool:
        """Whether this replica was opened with an ``at_rest_key``."""
        return self._env.sealer is not None

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

    def stats(self) -> dict[str, Any]:
        """Counts of keys and revocations held, and environment figures (map size)."""
        with self._env.read() as txn:
            keys = txn.txn.stat(self._env.dbs["state"])["entries"]
            revocations = self._revocations.count(txn)
        return {"keys": keys, "map_size": self._env.map_size, "replica_id": self.replica_id,
                "revocations": revocations}

    def __repr__(self) -> str:
        return f"Replica({self.path!r}, replica_id={self.replica_id!r})"

    # -- identity, clocks, the write fence ---------------------------------------------

    @property
    def clock(self) -> Callable[[], int]:
        """The wall clock (Unix milliseconds) this replica stamps writes and judges
        expiry by; injected with ``Replica.open(clock=...)`` in tests and simulations."""
        return self._stamps.clock

    @property
    def origin(self) -> str | None:
        """The origin this object mints its dots under, ``"<replica id>#<incarnation>"``
        (see :mod:`memmesh.storage._incarnation`); None until it first mints a dot, so a
        read-only open draws none."""
        return self._stamps.origin

    @property
    def write_fence(self) -> str | None:
        """Why local writes are fenced off right now (None: they are not)."""
        return self._stamps.write_fence

    def fence_writes(self, reason: str) -> None:
        """Refuse every local write (``WritesFencedError`` carrying ``reason``, one line for
        an operator: what is wrong, what to do) until :meth:`unfence_writes`. Sync goes
        on. The gossip node fences a replica whose clock runs ahead of its peers'."""
        self._stamps.fence(reason)

    def unfence_writes(self) -> None:
        """Allow local writes again."""
        self._stamps.unfence()

    # -- the memory model --------------------------------------------------------------

    @_doc(Memory.add)
    def add(self, text: str, *, app_id: str | None = None, user_id: str | None = None,
            agent_id: str | None = None, run_id: str | None = None, actor: str | None = None,
            metadata: Mapping[str, Any] | None = None, confidence: float = 1.0,
            ttl: float | None = None, policy: str = "mv", tier: str | None = None,
            role: str | None = None, priority: bool = False,
            importance: float | None = None,
            detail: Mapping[str, Any] | None = None, sync: str | None = None) -> str:
        return self._memory.add(text, app_id=app_id, user_id=user_id, agent_id=agent_id,
                                run_id=run_id, actor=actor, metadata=metadata,
                                confidence=confidence, ttl=ttl, policy=policy, tier=tier,
                                role=role, priority=priority, importance=importance,
                                detail=detail, sync=sync)

    @_doc(Memory.update)
    def update(self, memory_id: str, text: str, *, actor: str | None = None,
               confidence: float | None = None, metadata: Mapping[str, Any] | None = None,
               role: str | None = None, importance: float | None = None,
               detail: Mapping[str, Any] | None = None, sync: str | None = None) -> None:
        self._memory.update(memory_id, text, actor=actor, confidence=confidence,
                            metadata=metadata, role=role, importance=importance,
                            detail=detail, sync=sync)

    @_doc(Memory.record_noop)
    def record_noop(self, memory_id: str, *, actor: str | None = None,
                    detail: Mapping[str, Any] | None = None, role: str | None = None) -> None:
        self._memory.record_noop(memory_id, actor=actor, detail=detail, role=role)

    @_doc(Memory.delete)
    def delete(self, memory_id: str, *, actor: str | None = None,
               role: str | None = None, detail: Mapping[str, Any] | None = None,
               sync: str | None = None) -> bool:
        return self._memory.delete(memory_id, actor=actor, role=role, detail=detail,
                                   sync=sync)

    def delete_all(self, *, actor: str | None = None, role: str | None = None,
                   everything: bool = False, **scope: str | None) -> int:
        """Delete every live memory whose scope matches ``scope`` (each given field equal,
        None matching an absent field, as in :meth:`list`), as ordinary deletes in one
        transaction (each recorded in history with ``actor`` and ``role``, each replicated); return
        how many were deleted. A scope without one field set to a value is refused
        (it would reach memories of every user) unless ``everything=True``, which takes
        no scope and deletes every memory. Sets are not touched."""
        fields = scope_filters(scope)
        if everything is not False:
            if everything is not True or fields:
                raise InvalidArgumentError("delete_all(everything=True) takes no scope")
        elif all(value is None for value in fields.values()):
            raise InvalidArgumentError(
                "delete_all needs a scope field with a value (app_id, user_id, agent_id,"
                " run_id), or everything=True")
        return self._delete_matching(fields, actor, role)

    def end_run(self, run_id: str, *, actor: str | None = None, role: str | None = None,
                **scope: str | None) -> int:
        """Discard a session: delete every live memory of run ``run_id`` (narrowed by
        the given ``scope`` fields) as :meth:`delete_all` does; return the count."""
        if type(run_id) is not str or not run_id:
            raise InvalidArgumentError("run_id must be a non-empty str")
        fields = scope_filters(scope)
        return self._delete_matching({**fields, "run_id": run_id}, actor, role)

    def _delete_matching(self, fields: dict[str, str | None], actor: str | None,
                         role: str | None) -> int:
        for name, value in (("actor", actor), ("role", role)):
            if value is not None and type(value) is not str:
                raise InvalidArgumentError(f"{name} must be a str or None")
        ids = [record.id for record in self._reads.matching(fields)]
        with self._env.batch():
            return sum(self._memory.delete(memory_id, actor=actor, role=role)
                       for memory_id in ids)

    @_doc(Memory.forget)
    def forget(self, memory_id: str, *, actor: str | None = None,
               role: str | None = None) -> bool:
        return self._memory.forget(memory_id, actor=actor, role=role)

    @_doc(Memory.resolve)
    def resolve(self, memory_id: str, text: str, *, resolver: str, inputs: tuple[Dot, ...],
                actor: str | None = None, confidence: float | None = None,
                metadata: Mapping[str, Any] | None = None, role: str | None = None,
                sync: str | None = None) -> Version:
        return self._memory.resolve(memory_id, text, resolver=resolver, inputs=inputs,
                                    actor=actor, confidence=confidence, metadata=metadata,
                                    role=role, sync=sync)

    @_doc(Memory.set_add)
    def set_add(self, key: str, element: Hashable, *, tier: str | None = None,
                **scope: str | None) -> None:
        self._memory.set_add(key, element, tier=tier, **scope)

    @_doc(Memory.set_remove)
    def set_remove(self, key: str, element: Hashable) -> bool:
        return self._memory.set_remove(key, element)

    @_doc(Memory.collect_expired)
    def collect_expired(self, now_ms: int | None = None, *, limit: int = 10_000) -> int:
        return self._memory.collect_expired(now_ms, limit=limit)

    # -- reads -------------------------------------------------------------------------

    @_doc(Reads.get)
    def get(self, memory_id: str) -> MemoryRecord | None:
        return self._reads.get(memory_id)

    @_doc(Reads.list)
    def list(self, *, limit: int | None = None, offset: int = 0,
             filters: Mapping[str, Any] | None = None, **scope_filters: str | None
             ) -> builtins.list[MemoryRecord]:
        return self._reads.list(limit=limit, offset=offset, filters=filters, **scope_filters)

    @_doc(Reads.pages)
    def pages(self, size: int = 1000) -> Iterator[builtins.list[MemoryRecord]]:
        return self._reads.pages(size)

    @_doc(Reads.set_members)
    def set_members(self, key: str) -> frozenset[Any]:
        return self._reads.set_members(key)

    @_doc(Reads.history)
    def history(self, memory_id: str) -> builtins.list[Event]:
        return self._reads.history(memory_id)

    @_doc(Reads.as_of)
    def as_of(self, timestamp: Timestamp | int) -> AsOfView:
        return self._reads.as_of(timestamp)

    def view(self, *, app_id: str | None = None, user_id: str | None = None,
             agent_id: str | None = None, run_id: str | None = None) -> ScopedView:
        """A read-only :class:`ScopedView` of what an agent with this scope sees: every
        memory that sets at least one scope field, each field it sets equal to the
        view's (app-wide, user, agent and run tiers at once, most specific first)."""
        return ScopedView(self._env, self._stamps.clock, self.replica_id,
                          {"app_id": app_id, "user_id": user_id, "agent_id": agent_id,
                           "run_id": run_id})

    @_doc(Conflicts.conflicts)
    def conflicts(self, **scope_filters: str | None) -> builtins.list[MemoryRecord]:
        return self._conflicts.conflicts(**scope_filters)

    # -- sync --------------------------------------------------------------------------

    def retire_origin(self) -> int:
        """Retire this object's origin: a graceful leave, the last write before
        :meth:`close` (the entry reaches peers with the next exchange). Peers that hold
        every event of it then stop naming it in their summaries. Returns its final
        counter (0: this object never wrote). Writing again afterwards is safe: the
        origin is then listed again until a later entry covers it."""
        return self._retiring.own_origin()

    def retire_unseen(self, older_than_ms: int) -> dict[str, int]:
        """Retire every origin (but this object's) whose latest event held here was
        stamped more than ``older_than_ms`` ago, at this replica's watermark of it;
        returns the entries raised (docs/internals.md, "Retired origins")."""
        if type(older_than_ms) is not int or older_than_ms <= 0:
            raise InvalidArgumentError("older_than_ms must be a positive int")
        return self._retiring.unseen(older_than_ms)

    @_doc(Sync.sync_summary)
    def sync_summary(self, *, digest: bool = False, digest_scope: PeerScope | None = None,
                     want: Sequence[str] = ()) -> bytes:
        age = self._retire_after
        if age is not None and self._stamps.clock() >= self._next_unseen_scan:
            self._next_unseen_scan = self._stamps.clock() + max(1, age // 4)
            self._retiring.unseen(age)
        return self._sync.sync_summary(digest=digest, digest_scope=digest_scope, want=want)

    @_doc(Sync.sync_changes)
    def sync_changes(self, summary: bytes, *, max_bytes: int | None = None,
                     peer: PeerScope | None = None) -> bytes:
        return self._sync.sync_changes(summary, max_bytes=max_bytes, peer=peer)

    @_doc(Sync.sync_apply)
    def sync_apply(self, changes: bytes) -> ApplyResult:
        return self._sync.sync_apply(changes)

    @_doc(Sync.state_digest)
    def state_digest(self) -> str:
        return self._sync.state_digest()

    # -- revocations and the retrospective check -------------------------------------------

    def _trust_store(self) -> TrustStore:
        if self.trust is None:
            raise NoTrustStoreError(
                "this replica has no trust store: open it with identity= or trust=")
        return self.trust

    def add_revocation(self, revocation: Revocation | bytes) -> bool:
        """Keep an authority's revocation (a :class:`memmesh.trust.Revocation` or its
        bytes): from now on this replica refuses the credential's writes stamped at or
        after its time, and gossips it to every peer with a trust store. True if it is
        new here or earlier than the one held (the earliest revocation of a credential
        wins). ``NoTrustStoreError`` without a trust store, ``CredentialError`` if this
        replica's authority did not make it, ``DecodeError`` if malformed; nothing changes
        then. Writes accepted before it arrived stay: :meth:`audit` finds them."""
        trust = self._trust_store()
        rev = parse_revocation(revocation, trust)

        def keep(txn: Txn) -> bool:
            self._revocations.refresh(txn)
            return bool(self._revocations.keep(txn, (rev,)))

        return self._env.write(keep)

    def revocations(self) -> builtins.list[Revocation]:
        """The revocations this replica holds (one per credential: the earliest), by
        credential id; empty without a trust store."""
        with self._env.read() as txn:
            self._revocations.refresh(txn)
            return self._revocations.listed(txn)

    def audit(self, *, hide: bool = False) -> AuditReport:
        """The retrospective permission check: judge every stored version, timeline event
        and set element again against the trust store as it is now (its revocations,
        expiry, grants, known credentials), by the rule ``sync_apply`` applies on receipt
        (``TrustStore.check_write``). Each :class:`Finding` names the memory, the dot's
        origin and counter, actor, role, stamp, the signing credential's replica id and
        the reason: ``revoked`` (stamped at or after its credential's revocation:
        accepted before the revocation arrived), ``by-revoked-member`` (stamped before
        it: kept, flagged), ``expired``, ``unknown-credential``, ``unsigned`` (no proof,
        e.g. written before signing), ``no-grant``, ``wrong-replica``, ``bad-proof``.

        ``hide=True`` makes the versions of every finding but ``by-revoked-member`` the
        local quarantine: reads on this replica (``get``, ``list``, views, conflicts,
        ``as_of``, search) no longer show them; the replicated state, its sync and its
        digest do not change. The quarantine persists, and each ``audit(hide=True)``
        rebuilds it (run it again after a new revocation); ``hide=False`` leaves it as
        it is. ``NoTrustStoreError`` without a trust store."""
        if type(hide) is not bool:
            raise InvalidArgumentError("hide must be a bool")
        trust = self._trust_store()
        with self._env.read() as txn:
            self._revocations.refresh(txn)
        return audit(self._env, trust, hide=hide)

    # -- the change journal, local-only aux ---------------------------------------------

    @_doc(Journal.seq)
    def journal_seq(self) -> int:
        return self._journal.seq()

    @_doc(Journal.since)
    def changes_since(self, seq: int, limit: int = 1000) -> ChangeBatch:
        return self._journal.since(seq, limit)

    @_doc(Env.last_commit)
    def last_commit(self) -> CommitMark | None:
        return self._env.last_commit()

    @_doc(Env.read_commit)
    def read_commit(self) -> CommitMark | None:
        return self._env.read_commit()

    def aux_get(self, namespace: str, key: bytes) -> bytes | None:
        """A local-only value (never replicated), e.g. a cached embedding."""
        return self._aux.get(namespace, key)

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None:
        """Store a local-only value under ``namespace`` and ``key``."""
        self._aux.put(namespace, key, value)

    def aux_delete(self, namespace: str, key: bytes) -> bool:
        """Drop a local-only value; whether there was one (e.g. the cached embedding of a
        forgotten text)."""
        return self._aux.delete(namespace, key)

    # -- subscriptions -------------------------------------------------------------------

    def watch(self, since: int | None = None, *, ops: Iterable[str] | None = None,
              prefix: str | None = None, where: Callable[[ChangeEvent], bool] | None = None,
              timeout: float | None = None, poll_interval: float = 1.0, page: int = 256,
              **scope: str | None) -> Watch:
        """The changes of this replica (local writes, other processes' on this directory,
        and what ``sync_apply`` merged from peers) as a :class:`Watch` of
        :class:`ChangeEvent`\\ s, in commit order, at least once.

        ``since``: a journal cursor (an event's ``cursor`` or ``watch.cursor``) to resume
        after, across restarts; None starts at the journal's end (changes from now on).
        Filters: scope fields equal (as :meth:`list`; None matches an absent field),
        ``ops`` (a collection of op names, see :class:`ChangeEvent`), a memory-id
        ``prefix``, and ``where(event) -> bool`` (e.g. ``view.visible``). A RESET event
        (never filtered out) says the journal no longer holds every change after
        ``since``: re-read what you derive, then go on. ``timeout`` ends the iteration
        after that many idle seconds (None: never; :meth:`Watch.close` ends it from any
        thread); commits of this process wake the watch at once, other processes'
        writes are seen within ``poll_interval`` seconds. At most ``page`` events are
        buffered; writers never wait for a watch."""
        if since is not None and (type(since) is not int or since < 0):
            raise InvalidArgumentError("since must be a journal cursor (an int >= 0) or None")
        wanted = WatchFilter(scope, ops=ops, prefix=prefix, where=where)
        return Watch(self._env, self, self._signal, self._stamps.clock, since=since,
                     wanted=wanted, page=page, poll_interval=poll_interval, timeout=timeout)

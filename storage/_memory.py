"""The memory model: local mutators of memories and sets (add, update, record_noop,
delete, forget, resolve, set_add, set_remove) and TTL collection.

Every mutator is one replayable write function (:mod:`._env`) that mints a fresh dot of
this object's origin and a fresh hybrid timestamp (:mod:`._stamps`), applies the pure
mutator of :mod:`memmesh.crdt.keystate` and stores the result (:mod:`._keystore`). Under
"mv" an update supersedes what it has seen and a delete is an observed-remove, so a
concurrent update survives it (add-wins); under "lww" both are writes at the hybrid
timestamp; ``forget`` is the tombstone that absorbs every concurrent and later state
and purges the history; ``resolve`` dominates exactly its input versions (Almeida,
Shoker, Baquero 2018 for the delta mutators). Every event on a memory, a NOOP included,
is logged in its replicated timeline with its actor and role (``crdt/_eventlog.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from memmesh.crdt import Dot, InvalidArgumentError, Timestamp, base_replica, freeze
from memmesh.crdt import keystate as ks
from memmesh.crdt.keystate import (
    DEFAULT_KEEP,
    KIND_MEMORY,
    KIND_SET,
    MAX_KEEP,
    OP_DELETE,
    OP_FORGET,
    OP_NOOP,
    OPS,
    Header,
    KeyState,
    VersionData,
)

from ._digest import state_key
from ._env import Env, Txn
from ._errors import UnknownMemoryError
from ._journal import check_sync
from ._keycodec import encode
from ._keystore import collect_expired, load, store, store_new
from ._proofs import OP_SET_ADD, OP_SET_REMOVE, event_content, set_content
from ._records import Version
from ._signing import Signing
from ._stamps import Stamps

__all__ = ["Memory", "check_keep", "check_scope", "new_memory_id", "to_version"]

MAX_TEXT = 1 << 20
MAX_FIELD = 256


def _check_str(value: object, what: str, *, optional: bool = True,
               limit: int = MAX_FIELD) -> str | None:
    if value is None and optional:
        return None
    if type(value) is not str or len(value) > limit or "\x00" in value:
        raise InvalidArgumentError(f"{what} must be a str of at most {limit} characters"
                                   " without NUL" + (" or None" if optional else ""))
    return value


def check_scope(scope: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("app_id", "user_id", "agent_id", "run_id"):
        out[name] = _check_str(scope.get(name), name)
    return out


def _confidence(value: object) -> float:
    if type(value) not in (int, float) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise InvalidArgumentError("confidence must be a number in [0, 1]")
    return float(value) + 0.0  # type: ignore[arg-type]  # + 0.0 turns -0.0 into 0.0


def _importance(value: object) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise InvalidArgumentError("importance must be a number in [0, 1] or None")
    return float(value) + 0.0  # type: ignore[arg-type]


def check_keep(value: object) -> int:
    """A timeline bound (``history_limit``): an int in [0, MAX_KEEP] (0: only the
    events of the standing versions)."""
    if type(value) is not int or not 0 <= value <= MAX_KEEP:
        raise InvalidArgumentError(f"history_limit must be an int in [0, {MAX_KEEP}]")
    return value


def _metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("metadata must be a mapping of plain data")
    frozen = _sorted(freeze(dict(value)))
    assert isinstance(frozen, dict)
    return frozen


def _sorted(value: Any) -> Any:
    """Plain data with every map's keys in sorted order (the canonical msgpack order)."""
    if type(value) is dict:
        return {k: _sorted(value[k]) for k in sorted(value)}
    if type(value) is tuple:
        return tuple(_sorted(v) for v in value)
    return value


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_memory_id() -> str:
    """A fresh memory id: exactly ``uuid.uuid4().hex`` (random 128 bits with the
    version-4 and RFC 4122 variant bits set), without building a ``UUID`` object."""
    return f"{int.from_bytes(os.urandom(16), 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"


def make_version(text: str | None, actor: str | None, role: str | None, ts: Timestamp,
                 confidence: float, metadata: dict[str, Any], op: str,
                 resolver: str | None = None, inputs: tuple[Dot, ...] = (),
                 importance: float | None = None) -> VersionData:
    pairs = tuple(sorted((d.replica, d.counter) for d in inputs))
    return VersionData(text, actor, role, ts.wall_ms, ts.logical, confidence, metadata,
                       OPS.index(op), resolver, pairs, importance)


def to_version(dot: Dot, v: VersionData) -> Version:
    """The public form of a stored version: ``replica`` is the member that wrote it (the
    base of its dot's origin), ``dot`` and the timestamp keep the full origin."""
    return Version(text=v.text, actor=v.actor, role=v.role, replica=base_replica(dot.replica),
                   timestamp=v.stamp(dot), confidence=v.confidence,
                   metadata=dict(v.metadata), dot=dot, op=OPS[v.op], resolver=v.resolver,
                   inputs=tuple(Dot(r, c) for r, c in v.inputs), importance=v.importance)


class Memory:
    """Local writes of memories and sets, and TTL collection."""

    def __init__(self, env: Env, stamps: Stamps, new_id: Callable[[], str],
                 keep: int = DEFAULT_KEEP, signing: Signing | None = None) -> None:
        self._env = env
        self._stamps = stamps
        self._new_id = new_id
        self._keep = check_keep(keep)
        self._signing = signing

    # -- signed writes (only with an identity: see _signing.py) ---------------------

    def _who(self, actor: str | None, role: str | None) -> tuple[str | None, str | None]:
        """``actor`` and ``role``, defaulted from the credential when it names one."""
        if self._signing is None:
            return actor, role
        return self._signing.defaults(actor, role)

    def _authorize(self, header: Header | dict[str, str | None], role: str | None,
                   actor: str | None, wall_ms: int) -> None:
        """Raise ``PermissionDeniedError`` unless this member may write there."""
        if self._signing is not None:
            if isinstance(header, Header):
                scope = (header.app_id, header.user_id, header.agent_id, header.run_id)
            else:
                scope = (header["app_id"], header["user_id"], header["agent_id"],
                         header["run_id"])
            self._signing.authorize(scope, role, actor, wall_ms)

    def _sign_version(self, txn: Txn, header: Header, dot: Dot, v: VersionData) -> None:
        if self._signing is not None:
            self._signing.note(txn, header, dot, v.op, v.wall_ms, event_content(
                v.op, v.actor, v.role, v.wall_ms, v.logical, v))

    def _sign_mark(self, txn: Txn, header: Header, dot: Dot, op: int, actor: str | None,
                   role: str | None, ts: Timestamp) -> None:
        if self._signing is not None:
            self._signing.note(txn, header, dot, op, ts.wall_ms, event_content(
                op, actor, role, ts.wall_ms, ts.logical, None))

    def _sign_set(self, txn: Txn, header: Header, dot: Dot, op: int, ts: Timestamp,
                  element: Any) -> None:
        if self._signing is not None:
            self._signing.note(txn, header, dot, op, ts.wall_ms, set_content(element))

    def collect_expired(self, now_ms: int | None = None, *, limit: int = 10_000) -> int:
        """Remove memories whose TTL has passed (state, indexes, history); how many.

        Every replica derives the same ``expires_at`` from the write's hybrid timestamp,
        so they all drop the same memories at the same wall time.
        """
        now = self._stamps.clock() if now_ms is None else now_ms
        return collect_expired(self._env, now, limit)

    # -- memories -----------------------------------------------------------------

    def add(self, text: str, *, app_id: str | None = None, user_id: str | None = None,
            agent_id: str | None = None, run_id: str | None = None, actor: str | None = None,
            metadata: Mapping[str, Any] | None = None, confidence: float = 1.0,
            ttl: float | None = None, policy: str = "mv", tier: str | None = None,
            role: str | None = None, priority: bool = False,
            importance: float | None = None,
            detail: Mapping[str, Any] | None = None, sync: str | None = None) -> str:
        """Create a memory; return its id (a random 128-bit hex string).

        ``tier`` defaults to "shared", except for run-scoped memories (``run_id`` set),
        which stay private unless ``tier="shared"`` is given explicitly. ``ttl`` (seconds)
        makes the memory expire at its creation time plus ``ttl`` on every replica.
        ``importance`` (None or a number in [0, 1]) is replicated with the version; the
        merge chain escalates conflicts by it (``memmesh.merge.resolve_conflicts``). The
        memory's timeline keeps this replica's ``history_limit`` superseded events.
        ``detail`` (plain data: why) goes on the ADD event and replicates with it, as for
        :meth:`record_noop`.
        ``sync``: how the node delivers this write and, remembered, the memory's later
        ones: "push" (at once) or "pull" (by anti-entropy); None: the remembered mode,
        else push for a priority memory, else the node's default (docs/guide.md).
        """
        check_sync(sync)
        actor, role = self._who(actor, role)
        _check_str(text, "text", optional=False, limit=MAX_TEXT)
        scope = check_scope({"app_id": app_id, "user_id": user_id, "agent_id": agent_id,
                             "run_id": run_id})
        _check_str(actor, "actor")
        _check_str(role, "role")
        conf = _confidence(confidence)
        meta = _metadata(metadata)
        weight = _importance(importance)
        why = _metadata(detail)
        if policy not in ("mv", "lww"):
            raise InvalidArgumentError('policy must be "mv" or "lww"')
        if tier is None:
            tier = "private" if run_id is not None else "shared"
        if tier not in ("shared", "private"):
            raise InvalidArgumentError('tier must be "shared" or "private"')
        if ttl is not None and (type(ttl) not in (int, float) or not 0 < ttl < 1e12
                                or math.isnan(ttl)):
            raise InvalidArgumentError("ttl must be a positive number of seconds")
        if type(priority) is not bool:
            raise InvalidArgumentError("priority must be a bool")
        memory_id = self._new_id()
        if type(memory_id) is not str or not memory_id or len(memory_id) > 256:
            raise InvalidArgumentError(f"id_factory returned an unusable id {memory_id!r}")
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> str:
            skey = state_key(memory_id)
            # a default id is 122 random bits: nothing can be stored under it; an id from
            # a custom id_factory is checked, since _store_new would overwrite blindly
            if self._new_id is not new_memory_id and txn.get("state", skey) is not None:
                raise InvalidArgumentError(f"id_factory returned {memory_id!r}, already used")
            self._authorize(scope, role, actor, wall)
            ts = self._stamps.now(txn, wall)
            expires = None if ttl is None else ts.wall_ms + max(1, int(ttl * 1000))
            header = Header(memory_id, KIND_MEMORY, scope["app_id"], scope["user_id"],
                            scope["agent_id"], scope["run_id"], policy, tier, priority, ts,
                            expires)
            dot = self._stamps.mint(txn, {})
            version = make_version(text, actor, role, ts, conf, meta, "ADD",
                                   importance=weight)
            new = ks.create(header, dot, version, keep=self._keep, detail=why)
            self._sign_version(txn, header, dot, version)
            store_new(txn, [(memory_id, skey, encode(new), new)], local=True,
                      sync=sync)
            return memory_id

        return self._env.write(write)

    def _live_memory(self, txn: Txn, memory_id: str) -> tuple[bytes, bytes, KeyState]:
        skey, raw, state = load(txn, memory_id)
        if state is None or raw is None or state.header.kind != KIND_MEMORY \
                or not state.live() or self._expired(state):
            raise UnknownMemoryError(f"no live memory {memory_id!r}")
        return skey, raw, state

    def _expired(self, state: KeyState, now_ms: int | None = None) -> bool:
        expires: int | None = state.header.expires_at
        if expires is None:
            return False
        return expires <= (self._stamps.clock() if now_ms is None else now_ms)

    def update(self, memory_id: str, text: str, *, actor: str | None = None,
               confidence: float | None = None, metadata: Mapping[str, Any] | None = None,
               role: str | None = None, importance: float | None = None,
               detail: Mapping[str, Any] | None = None, sync: str | None = None) -> None:
        """Write a new version superseding every version this replica has seen.

        ``confidence``/``metadata``/``role``/``importance`` left None keep those of the
        newest standing version. Writing the text that already stands alone, with
        nothing else changed, logs a NOOP event instead (replicated; no new version).
        ``detail`` goes on the event and replicates with it, as for :meth:`record_noop`.
        ``sync`` as for :meth:`add`.
        """
        check_sync(sync)
        actor, role = self._who(actor, role)
        _check_str(memory_id, "memory_id", optional=False)
        _check_str(text, "text", optional=False, limit=MAX_TEXT)
        _check_str(actor, "actor")
        _check_str(role, "role")
        conf = None if confidence is None else _confidence(confidence)
        meta = None if metadata is None else _metadata(metadata)
        weight = _importance(importance)
        why = _metadata(detail)
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> None:
            skey, raw, old = self._live_memory(txn, memory_id)
            standing = old.standing()
            newest = max(standing, key=lambda item: item[1].stamp(item[0]))[1]
            new_conf = newest.confidence if conf is None else conf
            new_meta = newest.metadata if meta is None else meta
            new_role = newest.role if role is None else role
            new_weight = newest.importance if weight is None else weight
            self._authorize(old.header, new_role, actor, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            if len(standing) == 1 and (text, actor, new_role, new_conf, new_weight) == \
                    (newest.text, newest.actor, newest.role, newest.confidence,
                     newest.importance) and new_meta == newest.metadata:
                new = ks.noop(old, dot, ks.mark(OP_NOOP, actor, role, ts, why))
                self._sign_mark(txn, old.header, dot, OP_NOOP, actor, role, ts)
            else:
                version = make_version(text, actor, new_role, ts, new_conf, new_meta, "UPDATE",
                                       importance=new_weight)
                new = ks.write(old, dot, version, why)
                self._sign_version(txn, old.header, dot, version)
            store(txn, memory_id, skey, raw, old, new, local=True, sync=sync)

        self._env.write(write)

    def record_noop(self, memory_id: str, *, actor: str | None = None,
                    detail: Mapping[str, Any] | None = None, role: str | None = None) -> None:
        """Log a NOOP event on a live memory: a write that was absorbed (e.g. a
        near-duplicate add folded into this memory); the standing versions stay.

        The event (``actor``, ``role``, ``detail``: plain data, why, the absorbed
        text...) is replicated with the memory's timeline and purged by :meth:`forget`.
        """
        actor, role = self._who(actor, role)
        _check_str(memory_id, "memory_id", optional=False)
        _check_str(actor, "actor")
        _check_str(role, "role")
        extra = {} if detail is None else dict(_metadata(detail))
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> None:
            skey, raw, old = self._live_memory(txn, memory_id)
            self._authorize(old.header, role, actor, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            new = ks.noop(old, dot, ks.mark(OP_NOOP, actor, role, ts, extra))
            self._sign_mark(txn, old.header, dot, OP_NOOP, actor, role, ts)
            store(txn, memory_id, skey, raw, old, new, local=True)

        self._env.write(write)

    def delete(self, memory_id: str, *, actor: str | None = None,
               role: str | None = None, detail: Mapping[str, Any] | None = None,
               sync: str | None = None) -> bool:
        """Observed-remove every standing version; False if nothing was live here.

        A concurrent update on another replica survives the delete (add-wins). The
        DELETE event names ``actor`` and ``role`` and carries ``detail`` (plain data, as
        for :meth:`record_noop`), replicated with the timeline. ``sync`` as for :meth:`add`.
        """
        check_sync(sync)
        actor, role = self._who(actor, role)
        _check_str(memory_id, "memory_id", optional=False)
        _check_str(actor, "actor")
        _check_str(role, "role")
        why = _metadata(detail)
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> bool:
            try:
                skey, raw, old = self._live_memory(txn, memory_id)
            except UnknownMemoryError:
                return False
            self._authorize(old.header, role, actor, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            if old.header.policy == "mv":
                new = ks.clear(old, dot, ks.mark(OP_DELETE, actor, role, ts, why))
                self._sign_mark(txn, old.header, dot, OP_DELETE, actor, role, ts)
            else:
                version = make_version(None, actor, role, ts, 1.0, {}, "DELETE")
                new = ks.write(old, dot, version, why)
                self._sign_version(txn, old.header, dot, version)
            store(txn, memory_id, skey, raw, old, new, local=True, sync=sync)
            return True

        return self._env.write(write)

    def forget(self, memory_id: str, *, actor: str | None = None,
               role: str | None = None) -> bool:
        """Erase a memory (or set): the tombstone wins over every concurrent update and
        the content and its history are purged here and on every replica it reaches.
        The tombstone keeps only the FORGET event: who (``actor``, ``role``) and when.

        False if the key is unknown here or already forgotten.
        """
        actor, role = self._who(actor, role)
        _check_str(memory_id, "memory_id", optional=False)
        _check_str(actor, "actor")
        _check_str(role, "role")
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> bool:
            skey, raw, old = load(txn, memory_id)
            if old is None or old.forgotten:
                return False
            self._authorize(old.header, role, actor, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            new = ks.forget(old, dot, ks.mark(OP_FORGET, actor, role, ts))
            self._sign_mark(txn, old.header, dot, OP_FORGET, actor, role, ts)
            store(txn, memory_id, skey, raw, old, new, local=True)
            return True

        return self._env.write(write)

    def resolve(self, memory_id: str, text: str, *, resolver: str, inputs: tuple[Dot, ...],
                actor: str | None = None, confidence: float | None = None,
                metadata: Mapping[str, Any] | None = None, role: str | None = None,
                sync: str | None = None) -> Version:
        """Write a RESOLVE version that dominates exactly the ``inputs`` versions, as
        ``actor`` with ``role`` (the resolver's: a role-ranked resolver ranks the
        resolution by it in a later conflict); its importance is the greatest of its
        inputs'. ``sync`` as for :meth:`add`."""
        check_sync(sync)
        actor, role = self._who(actor, role)
        _check_str(text, "text", optional=False, limit=MAX_TEXT)
        _check_str(resolver, "resolver", optional=False)
        _check_str(actor, "actor")
        _check_str(role, "role")
        if not inputs or not all(isinstance(d, Dot) for d in inputs):
            raise InvalidArgumentError("inputs must be a non-empty tuple of Dots")
        conf = None if confidence is None else _confidence(confidence)
        meta = None if metadata is None else _metadata(metadata)
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> Version:
            skey, raw, old = self._live_memory(txn, memory_id)
            ks.check_inputs(old, ((d.replica, d.counter) for d in inputs))
            standing = [v for d, v in old.standing() if d in inputs] or \
                [v for _, v in old.standing()]
            new_conf = max(v.confidence for v in standing) if conf is None else conf
            weights = [v.importance for v in standing if v.importance is not None]
            self._authorize(old.header, role, actor, wall)
            ts = self._stamps.now(txn, wall)
            version = make_version(text, actor, role, ts, new_conf, meta or {}, "RESOLVE",
                                   resolver, tuple(inputs), max(weights, default=None))
            dot = self._stamps.mint(txn, old.ctx)
            new = ks.write(old, dot, version)
            self._sign_version(txn, old.header, dot, version)
            store(txn, memory_id, skey, raw, old, new, local=True, sync=sync)
            return to_version(dot, version)

        return self._env.write(write)

    # -- sets -----------------------------------------------------------------------

    def set_add(self, key: str, element: Hashable, *, tier: str | None = None,
                **scope: str | None) -> None:
        """Add ``element`` to the add-wins set ``key`` (created with ``scope`` if new)."""
        _check_str(key, "key", optional=False)
        unknown = set(scope) - {"app_id", "user_id", "agent_id", "run_id"}
        if unknown:
            raise InvalidArgumentError(f"unknown scope fields {sorted(unknown)}")
        fields = check_scope(scope)
        if tier is None:
            tier = "private" if fields["run_id"] is not None else "shared"
        if tier not in ("shared", "private"):
            raise InvalidArgumentError('tier must be "shared" or "private"')
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> None:
            skey, raw, old = load(txn, key)
            if old is None:
                header = Header(key, KIND_SET, fields["app_id"], fields["user_id"],
                                fields["agent_id"], fields["run_id"], "set", tier, False,
                                None, None)
                old = KeyState(header, {}, False, {})
            elif old.header.kind != KIND_SET:
                raise InvalidArgumentError(f"{key!r} is a memory, not a set")
            elif old.forgotten:
                raise UnknownMemoryError(f"set {key!r} was forgotten")
            self._authorize(old.header, None, None, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            new = ks.set_add(old, element, dot)
            self._sign_set(txn, old.header, dot, OP_SET_ADD, ts, element)
            store(txn, key, skey, raw, None if raw is None else old, new, local=True)

        self._env.write(write)

    def set_remove(self, key: str, element: Hashable) -> bool:
        """Remove the observed adds of ``element``; False if it was not a member here."""
        _check_str(key, "key", optional=False)
        wall = self._stamps.write_clock()

        def write(txn: Txn) -> bool:
            skey, raw, old = load(txn, key)
            if old is None or old.header.kind != KIND_SET or old.forgotten:
                return False
            try:
                present = element in old.body
            except TypeError:  # unhashable: never an element
                present = False
            if not present:
                return False
            self._authorize(old.header, None, None, wall)
            ts = self._stamps.now(txn, wall)
            dot = self._stamps.mint(txn, old.ctx)
            new = ks.set_remove(old, element, dot)
            self._sign_set(txn, old.header, dot, OP_SET_REMOVE, ts, element)
            store(txn, key, skey, raw, old, new, local=True)
            return True

        return self._env.write(write)

"""A tiny in-memory stand-in for ``memmesh.storage.Replica``'s sync surface.

It speaks storage's wire format (``memmesh.storage.wire``: summaries, changes with
``through`` claims; here priority first, ``max_bytes`` truncation, ``peer`` scopes), so
the protocol core can be tested apart from storage.
Each key is a grow-only set of ``(origin, counter) -> text`` versions: merge is union.
It also has the wall clock (injectable), drift bound and write fence of a replica, and
``refuse`` names keys whose states ``sync_apply`` skips with a reason, as storage does.
Payloads say who sent them and the scope they were filtered with, as storage's do; a
summary asked for a digest or ``want`` carries them (the digest's sums are zeros: there
is no real digest here), and ``inject[sender]`` queues fields (``wanted``, ``lowered``,
``through``...) for the next ``sync_apply`` results of that sender's payloads, so the
policy's digest repair decisions can be driven without storage.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from memmesh.crdt import packb, unpackb
from memmesh.storage.wire import (
    DIGEST_BUCKET_BYTES,
    DIGEST_BUCKETS,
    Changes,
    PeerScope,
    Summary,
    parse_changes,
    parse_summary,
)


@dataclass(frozen=True)
class FakeScope:
    """Which apps a peer may receive (None: all)."""

    apps: frozenset[str] | None = None

    def allows(self, app: str | None) -> bool:
        return self.apps is None or app in self.apps


@dataclass(frozen=True)
class FakeRefusal:
    key: str | None
    reason: str


@dataclass(frozen=True)
class FakeApplyResult:
    applied: int
    changed: tuple[str, ...]
    refused: tuple[FakeRefusal, ...] = field(default=())
    through: dict[str, int] = field(default_factory=dict)
    lowered: dict[str, int] = field(default_factory=dict)
    scope: object = None
    wanted: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeChangeBatch:
    seq: int
    changes: tuple[tuple[int, str, bool, bool], ...]
    reset: bool = False


EPOCH_MS = 1_700_000_000_000


class FakeReplica:
    def __init__(self, replica_id: str, *, clock: Callable[[], int] | None = None,
                 max_drift_ms: int = 600_000) -> None:
        self.replica_id = replica_id
        self.clock: Callable[[], int] = clock or (lambda: EPOCH_MS)
        self.max_drift_ms = max_drift_ms
        self.write_fence: str | None = None
        self.refuse: dict[str, str] = {}  # key -> reason: skipped by sync_apply
        self._lock = threading.RLock()
        self.keys: dict[str, dict[tuple[str, int], str]] = {}
        self.meta: dict[str, tuple[bool, str | None, bool]] = {}  # priority, app, private
        self.held: dict[str, set[int]] = {}
        self.counter = 0
        self.journal: list[tuple[int, str, bool, bool]] = []
        self.aux: dict[tuple[str, bytes], bytes] = {}
        self.applied_blobs: list[bytes] = []
        self.summary_args: list[tuple[bool, object, tuple[str, ...]]] = []
        self.inject: dict[str, list[dict[str, object]]] = {}

    # -- the write fence
    def fence_writes(self, reason: str) -> None:
        self.write_fence = reason

    def unfence_writes(self) -> None:
        self.write_fence = None

    # -- local writes
    def write(self, key: str, text: str, *, priority: bool = False, app: str | None = None,
              private: bool = False) -> None:
        if self.write_fence is not None:
            raise RuntimeError(self.write_fence)
        with self._lock:
            self.counter += 1
            origin = self.replica_id if not private else self.replica_id + ":private"
            dot = (origin, self.counter)
            self.keys.setdefault(key, {})[dot] = text
            self.meta.setdefault(key, (priority, app, private))
            if not private:
                self.held.setdefault(self.replica_id, set()).add(self.counter)
            self.journal.append((len(self.journal) + 1, key, True, priority))

    # -- sync surface
    def _wm(self) -> dict[str, int]:
        out = {}
        for origin, counters in self.held.items():
            n = 0
            while n + 1 in counters:
                n += 1
            out[origin] = n
        return out

    def sync_summary(self, *, digest: bool = False, digest_scope: object = None,
                     want: Sequence[str] = ()) -> bytes:
        """The watermark summary; digest repair's arguments are recorded, not acted on
        (``summary_args``): the real digest repair is storage's, tested with replicas."""
        self.summary_args.append((digest, digest_scope, tuple(want)))
        with self._lock:
            wm, root = self._wm(), bytes.fromhex(self.state_digest())
        sums = bytes(DIGEST_BUCKETS * DIGEST_BUCKET_BYTES)
        return Summary(self.replica_id, wm, root, digest=(None, sums) if digest else None,
                       want=tuple(want)).pack()

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = None,
                     peer: object = None) -> bytes:
        wm = parse_summary(summary).wm
        with self._lock:
            wanted = []
            excluded: set[tuple[str, int]] = set()
            for key, versions in self.keys.items():
                prio, app, private = self.meta[key]
                new = [d for d in versions if d[1] > wm.get(d[0], 0)]
                if private or not new:
                    continue
                if isinstance(peer, FakeScope) and not peer.allows(app):
                    excluded.update(new)
                    continue
                wanted.append((not prio, min(new), key))
            wanted.sort()
            shipped: list[bytes] = []
            dots: set[tuple[str, int]] = set()
            size = 0
            truncated = False
            for _, _, key in wanted:
                prio, app, _ = self.meta[key]
                entry = (key, prio, app, tuple((o, c, t) for (o, c), t in
                                               sorted(self.keys[key].items())))
                packed = packb(entry)
                n = len(packed)
                if max_bytes is not None and shipped and size + n > max_bytes:
                    truncated = True
                    break
                shipped.append(packed)
                size += n
                dots.update(self.keys[key])
            through = {}
            for origin, counters in self.held.items():
                n = wm.get(origin, 0)
                while n + 1 in counters and (not truncated or (origin, n + 1) in dots
                                             or (origin, n + 1) in excluded):
                    n += 1
                if n > wm.get(origin, 0):
                    through[origin] = (wm.get(origin, 0), n)
            scope = PeerScope(apps=frozenset(peer.apps)) if isinstance(peer, FakeScope) and \
                peer.apps is not None else None
            return Changes(self.replica_id, scope, tuple(shipped), through).pack()

    def sync_apply(self, changes: bytes) -> FakeApplyResult:
        c = parse_changes(changes)
        changed = []
        refused = []
        with self._lock:
            self.applied_blobs.append(changes)
            for state in c.states:
                key, prio, app, versions = unpackb(state)  # type: ignore[misc]
                if key in self.refuse:
                    refused.append(FakeRefusal(key, self.refuse[key]))
                    continue
                cur = self.keys.setdefault(key, {})
                self.meta.setdefault(key, (prio, app, False))
                before = len(cur)
                for o, n, t in versions:
                    cur[(o, n)] = t
                    self.held.setdefault(o, set()).add(n)
                if len(cur) != before:
                    changed.append(key)
                    self.journal.append((len(self.journal) + 1, key, False, prio))
        scope = None if c.scope is None or c.scope.apps is None else \
            FakeScope(frozenset(a for a in c.scope.apps if a is not None))
        queued = self.inject.get(c.rid, [])
        extra = queued.pop(0) if queued else {}
        return FakeApplyResult(len(c.states), tuple(changed), tuple(refused),
                               scope=scope, **extra)

    def state_digest(self) -> str:
        with self._lock:
            items = sorted((k, sorted(v.items())) for k, v in self.keys.items()
                           if not self.meta[k][2])
            return hashlib.sha256(repr(items).encode()).hexdigest()

    def texts(self) -> set[str]:
        with self._lock:
            return {t for v in self.keys.values() for t in v.values()}

    # -- journal and aux
    def journal_seq(self) -> int:
        with self._lock:
            return len(self.journal)

    def changes_since(self, seq: int, limit: int = 1000) -> FakeChangeBatch:
        with self._lock:
            part = tuple(self.journal[seq: seq + limit])
            return FakeChangeBatch(seq + len(part), part)

    def aux_get(self, namespace: str, key: bytes) -> bytes | None:
        return self.aux.get((namespace, key))

    def aux_put(self, namespace: str, key: bytes, value: bytes) -> None:
        self.aux[(namespace, key)] = value

    def stats(self) -> dict[str, object]:
        return {"keys": len(self.keys), "replica_id": self.replica_id, "revocations": 0}


def converged(replicas: Iterable[FakeReplica]) -> bool:
    return len({r.state_digest() for r in replicas}) == 1

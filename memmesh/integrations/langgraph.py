"""``MemmeshStore``: a LangGraph ``BaseStore`` on a memmesh replica (extra ``langgraph``).

LangGraph agents keep long-term memory in a store of items ``(namespace, key) -> value``.
``MemmeshStore`` keeps each item as one memmesh memory (policy ``"lww"``, the scope from
the store's base scope and ``scope(namespace)``, namespace, key, value and TTL in the
metadata), so every write is durable before it returns and replicated by the replica's
gossip node, with no database in between; replicas that put one new key concurrently
converge on one memory per key. Batches, TTL refresh (a replicated write), ``query=``
search (LangGraph's ``IndexConfig`` or a ``SemanticIndex``; per-field vectors, best field
wins, as in ``InMemoryStore``: ``_lg_index``) and what differs from ``InMemoryStore``:
docs/langgraph.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)

from memmesh.crdt import InvalidArgumentError, freeze
from memmesh.semantic import ScoreWeights, SemanticIndex
from memmesh.storage import JournalFollower, MemoryRecord, Replica

from ._lg_async import Coalescer, Outcome
from ._lg_filters import compile_lg_filter, matches_filter, namespace_matches, thaw
from ._lg_index import (
    Bridge,
    Embed,
    FieldVectors,
    checked_paths,
    default_fields,
    field_texts,
    index_config_of,
)

__all__ = ["MemmeshStore", "matches_filter"]

#: The metadata key under which an item's namespace, key, value and TTL are kept.
MARK = "langgraph"
SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")
JOURNAL_PAGE = 1000

Namespace = tuple[str, ...]
ScopeFn = Callable[[Namespace], Mapping[str, str | None]]


def _datetime(wall_ms: int, logical: int = 0) -> datetime:
    """A wall-clock time as a datetime; an HLC's logical counter adds microseconds, so
    two writes in one millisecond get increasing ``updated_at`` times (up to 999)."""
    return datetime.fromtimestamp(wall_ms / 1000, tz=UTC) + timedelta(
        microseconds=min(logical, 999))


# -- the store -------------------------------------------------------------------------


class _Entry:
    """The cached view of one item memory."""

    __slots__ = ("actor", "confidence", "created_ms", "expires_at", "fields", "indexed", "key",
                 "memory_id", "namespace", "ttl", "updated", "value")

    def __init__(self, record: MemoryRecord, mark: Mapping[str, Any]) -> None:
        self.memory_id = record.id
        self.namespace: Namespace = tuple(mark["ns"])
        self.key: str = mark["key"]
        self.value: dict[str, Any] = thaw(mark["value"])
        self.ttl: float | None = mark.get("ttl")
        self.indexed: bool = bool(mark.get("indexed", True))
        fields = mark.get("fields")  # the put's own index paths; None: the store's
        self.fields: list[str] | None = None if fields is None else [str(f) for f in fields]
        newest = max(record.versions, key=lambda v: v.timestamp)
        self.confidence, self.actor = float(newest.confidence), newest.actor
        self.created_ms: int = int(mark.get("created_ms", record.created_at.wall_ms))
        self.expires_at = record.expires_at
        self.updated = record.updated_at

    def live(self, now_ms: int) -> bool:
        return self.expires_at is None or self.expires_at > now_ms

    def item(self, score: float | None = None, *, search: bool = False) -> Item:
        created = _datetime(self.created_ms)
        updated = _datetime(self.updated.wall_ms, self.updated.logical)
        if search:
            return SearchItem(self.namespace, self.key, dict(self.value), created, updated,
                              score)
        return Item(value=dict(self.value), key=self.key, namespace=self.namespace,
                    created_at=created, updated_at=updated)


def _created_order(entry: _Entry) -> tuple[int, Namespace, str]:
    return entry.created_ms, entry.namespace, entry.key


class MemmeshStore(BaseStore):
    """A LangGraph store whose items live in ``replica`` (see the module docstring).

    ``index``: for ``search(query=...)``, LangGraph's ``IndexConfig`` (``{"dims", "embed",
    "fields"}``, ``embed`` a LangChain ``Embeddings``, a sync or async callable or a
    ``"provider:model"`` string langchain resolves), or a
    :class:`memmesh.semantic.SemanticIndex` over the same replica (its embedder and
    weights are used). ``fields``: the value paths embedded (LangGraph's path syntax with
    ``[*]``; default the config's ``fields``, else ``["$"]``, the whole value), each on its
    own; an item scores as its best field. ``put(..., index=[...])`` overrides them per
    item (kept with the item) and ``index=False`` items are never embedded.
    ``score``: ``"similarity"`` (default) makes ``SearchItem.score`` the best field's
    cosine, as in LangGraph's stores; ``"rank"`` ranks and scores by memmesh's blend
    (similarity, recency, confidence, actor trust: :class:`~memmesh.semantic.ScoreWeights`).
    ``app_id``/``user_id``/``agent_id``: the base scope of every item (only items of this
    scope are seen); ``scope``: extra scope fields derived from an item's namespace.
    ``policy``: "lww" (default) or "mv" (concurrent puts are kept as a memmesh conflict
    for a resolver; reads show the newest meanwhile). ``actor``: recorded on writes.
    ``ttl_config``: LangGraph's ``TTLConfig`` (``default_ttl``, ``refresh_on_read``).
    """

    supports_ttl = True

    def __init__(
        self,
        replica: Replica,
        *,
        index: IndexConfig | SemanticIndex | None = None,
        fields: Sequence[str] | None = None,
        score: Literal["similarity", "rank"] = "similarity",
        app_id: str | None = "langgraph",
        user_id: str | None = None,
        agent_id: str | None = None,
        scope: ScopeFn | None = None,
        policy: str = "lww",
        actor: str | None = None,
        ttl_config: TTLConfig | None = None,
    ) -> None:
        if policy not in ("lww", "mv"):
            raise InvalidArgumentError('policy must be "lww" or "mv"')
        if score not in ("similarity", "rank"):
            raise InvalidArgumentError('score must be "similarity" or "rank"')
        self.replica = replica
        self.index_config: IndexConfig | None = None
        self._embedder: Any = None
        self.weights = ScoreWeights()
        if isinstance(index, SemanticIndex):
            if index.replica is not replica:
                raise InvalidArgumentError("the index must be built over the same replica")
            self._embedder, self.weights = index, index.weights
            config: Mapping[str, Any] = {"fields": fields}
        elif isinstance(index, Mapping):
            config = dict(index) if fields is None else {**index, "fields": fields}
            self.index_config, self._embedder = index_config_of(config)
        elif index is not None:
            raise InvalidArgumentError("index must be a LangGraph IndexConfig or a SemanticIndex")
        else:
            config = {"fields": fields}
        self.index = index
        self.fields = checked_paths(default_fields(config))
        self.distance: str = str(config.get("distance_type") or "cosine")
        self.score = score
        self._vectors = FieldVectors()
        self.base_scope = {k: v for k, v in
                           (("app_id", app_id), ("user_id", user_id), ("agent_id", agent_id))
                           if v is not None}
        self.scope_fn = scope
        self.policy = policy
        self.actor = actor
        self.ttl_config = ttl_config
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}  # memory id -> entry
        self._by_key: dict[tuple[Namespace, str], set[str]] = {}
        self._order: list[_Entry] | None = None  # _items() before expiry, None: stale
        self._coalescer = Coalescer(self._batches)
        self._follower = JournalFollower(replica, page=JOURNAL_PAGE)  # starts with a rescan

    # -- following the replica --------------------------------------------------------

    def _now(self) -> int:
        return int(self.replica.clock())

    def _mark(self, record: MemoryRecord | None) -> Mapping[str, Any] | None:
        if record is None:
            return None
        if any(getattr(record, k) != v for k, v in self.base_scope.items()):
            return None
        mark = record.metadata.get(MARK)
        return mark if isinstance(mark, Mapping) and "ns" in mark and "key" in mark else None

    def _drop(self, memory_id: str) -> None:
        self._order = None
        entry = self._entries.pop(memory_id, None)
        if entry is not None:
            ids = self._by_key.get((entry.namespace, entry.key))
            if ids is not None:
                ids.discard(memory_id)
                if not ids:
                    del self._by_key[(entry.namespace, entry.key)]

    def _load(self, record: MemoryRecord | None, memory_id: str) -> None:
        self._drop(memory_id)
        mark = self._mark(record)
        if mark is None or record is None:
            return
        entry = _Entry(record, mark)
        self._entries[memory_id] = entry
        self._by_key.setdefault((entry.namespace, entry.key), set()).add(memory_id)

    def _refresh(self) -> None:
        """Catch up with the replica's change journal (local, other processes, peers)."""
        self._follower.catch_up(self._reload, self._rescan)

    def _reload(self, memory_ids: list[str]) -> None:
        for memory_id in memory_ids:
            self._load(self.replica.get(memory_id), memory_id)

    def _rescan(self) -> None:
        self._entries.clear()
        self._by_key.clear()
        self._order = None
        for record in self.replica.list(**self.base_scope):
            self._load(record, record.id)

    def _current(self, namespace: Namespace, key: str, now_ms: int) -> _Entry | None:
        """The item's winning memory: the live one updated last (all replicas agree)."""
        ids = self._by_key.get((namespace, key))
        if not ids:
            return None
        live = [self._entries[i] for i in ids if self._entries[i].live(now_ms)]
        return max(live, key=lambda e: e.updated) if live else None

    def _items(self, now_ms: int) -> list[_Entry]:
        """Every item's winning memory, oldest item first. The order ignoring expiry is
        cached until the next change; only an expired winner is looked up again."""
        if self._order is None:
            newest = [max((self._entries[i] for i in ids), key=lambda e: e.updated)
                      for ids in self._by_key.values()]
            newest.sort(key=_created_order)
            self._order = newest
        out: list[_Entry] = []
        resort = False
        for entry in self._order:
            if entry.live(now_ms):
                out.append(entry)
                continue
            other = self._current(entry.namespace, entry.key, now_ms)
            if other is not None:
                out.append(other)
                resort = True
        if resort:
            out.sort(key=_created_order)
        return out

    # -- batch ------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph store operations; results in the order of ``ops``."""
        return self._batch(list(ops), None)

    def _batch(self, ops: list[Op], bridge: Bridge | None) -> list[Result]:
        embed = None if self._embedder is None else Embed(self._embedder, bridge)
        for op in ops:
            validate_op_namespace(op)
        with self._lock:
            self._refresh()
            now = self._now()
            results: list[Result] = []
            puts: dict[tuple[Namespace, str], PutOp] = {}
            refresh: dict[tuple[Namespace, str], _Entry] = {}
            for op in ops:
                if isinstance(op, GetOp):
                    entry = self._current(tuple(op.namespace), op.key, now)
                    if entry is not None and op.refresh_ttl and entry.ttl is not None:
                        refresh[(entry.namespace, entry.key)] = entry
                    results.append(None if entry is None else entry.item())
                elif isinstance(op, SearchOp):
                    found = self._search(op, now, embed)
                    if op.refresh_ttl:
                        for entry, _ in found:
                            if entry.ttl is not None:
                                refresh[(entry.namespace, entry.key)] = entry
                    results.append([e.item(score, search=True) for e, score in found])
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op, now))
                elif isinstance(op, PutOp):
                    puts[(tuple(op.namespace), op.key)] = op
                    results.append(None)
                else:
                    raise InvalidArgumentError(f"unknown operation {type(op).__name__}")
            for target, entry in refresh.items():
                if target not in puts:
                    puts[target] = PutOp(entry.namespace, entry.key, entry.value,
                                         entry.fields if entry.indexed else False,
                                         ttl=entry.ttl)
            if puts:
                self._write(list(puts.values()), now)
                self._refresh()
                if embed is not None:  # embed what was put now, as InMemoryStore does
                    self._embed([self._current(ns, key, now) for ns, key in puts], embed)
            return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread, so LMDB never blocks the event loop; calls
        made concurrently share one thread hop (``_lg_async``), each still its own batch.
        The embedder's async methods run on this loop (an async embed function works)."""
        return await self._coalescer.submit(list(ops))

    def _batches(self, groups: list[list[Op]], bridge: Bridge) -> list[Outcome]:
        """Run ``groups`` in order, each as one batch; an exception is that batch's only."""
        outcomes: list[Outcome] = []
        with self._lock:
            for ops in groups:
                try:
                    outcomes.append(self._batch(ops, bridge))
                except Exception as exc:  # handed to that batch's caller alone
                    outcomes.append(exc)
        return outcomes

    # -- reads --------------------------------------------------------------------------

    def _paths(self, entry: _Entry) -> list[str]:
        return self.fields if entry.fields is None else entry.fields

    def _embed(self, entries: Iterable[_Entry | None], embed: Embed) -> None:
        """Make sure the field vectors of the indexed ``entries`` are cached."""
        self._vectors.ensure([(e.memory_id, e.updated, field_texts(e.value, self._paths(e)))
                              for e in entries if e is not None and e.indexed], embed)
        self._vectors.forget(set(self._entries))

    def _search(self, op: SearchOp, now: int,
                embed: Embed | None) -> list[tuple[_Entry, float | None]]:
        prefix = tuple(op.namespace_prefix)
        n = len(prefix)
        match = compile_lg_filter(op.filter)
        candidates = [e for e in self._items(now) if e.namespace[:n] == prefix
                      and (match is None or match(e.value))]
        if op.offset < 0 or op.limit < 0:
            raise InvalidArgumentError("limit and offset must be >= 0")
        if not (op.query and embed is not None):
            return [(e, None) for e in candidates[op.offset: op.offset + op.limit]]
        self._embed(candidates, embed)
        query = embed.query(op.query)
        scored: list[tuple[_Entry, float]] = []
        unscored: list[tuple[_Entry, float | None]] = []
        for entry in candidates:
            distance = self.distance if self.score == "similarity" else "cosine"
            best = (self._vectors.best(entry.memory_id, query, distance) if entry.indexed
                    else None)
            if best is None:
                unscored.append((entry, None))
            else:
                scored.append((entry, self._rank(entry, best, now)))
        scored.sort(key=lambda pair: -pair[1])
        ranked: list[tuple[_Entry, float | None]] = [*scored, *unscored]
        return ranked[op.offset: op.offset + op.limit]

    def _rank(self, entry: _Entry, cosine: float, now: int) -> float:
        """The item's score: its best field's similarity (``distance_type``), or with
        ``score="rank"`` memmesh's blend of the best cosine, recency and priors."""
        if self.score == "similarity":
            return cosine
        w = self.weights
        recency = float(w.recency_factor(np.array([entry.updated.wall_ms], dtype=np.float64),
                                         float(now))[0])
        prior = float(w.prior(entry.confidence, entry.actor))
        return float(w.similarity) * cosine + float(w.recency) * recency + prior

    def _list_namespaces(self, op: ListNamespacesOp, now: int) -> list[Namespace]:
        namespaces = {e.namespace for e in self._items(now)}
        conditions = op.match_conditions or ()
        selected = [ns for ns in namespaces
                    if all(namespace_matches(c, ns) for c in conditions)]
        if op.max_depth is not None:
            selected = list({ns[: op.max_depth] for ns in selected})
        return sorted(selected)[op.offset: op.offset + op.limit]

    # -- writes -------------------------------------------------------------------------

    def _text(self, value: Mapping[str, Any], index: Any) -> tuple[str, bool, list[str] | None]:
        """The memory's text (the item's field texts, for memmesh's own tools), whether
        the item is indexed, and its own index paths (None: the store's ``fields``)."""
        if index is False:
            return "", False, None
        own = None if index is None else checked_paths(index)
        texts = field_texts(value, self.fields if own is None else own)
        return "\n".join(texts), True, own

    def _scope(self, namespace: Namespace) -> dict[str, str | None]:
        scope: dict[str, str | None] = dict(self.base_scope)
        if self.scope_fn is not None:
            extra = dict(self.scope_fn(namespace))
            unknown = set(extra) - set(SCOPE_FIELDS)
            if unknown:
                raise InvalidArgumentError(f"scope() returned unknown fields {sorted(unknown)}")
            for name, value in extra.items():
                if name in self.base_scope and value != self.base_scope[name]:
                    raise InvalidArgumentError(f"scope() may not change the store's {name}")
                scope[name] = value
        return scope

    def _check(self, op: PutOp) -> tuple[str, bool, list[str] | None,
                                          dict[str, str | None]] | None:
        """Validate one put before anything is written: (text, indexed, fields, scope), or None
        for a delete. Raises :class:`InvalidArgumentError` for a bad value or TTL."""
        if op.value is None:
            return None
        if not isinstance(op.value, Mapping):
            raise InvalidArgumentError("a store value must be a mapping")
        try:
            freeze(dict(op.value))
            text, indexed, fields = self._text(op.value, op.index)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"a store value must be JSON-like data: {exc}") from exc
        ttl = op.ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                                or not 0 < ttl < 1e9):
            raise InvalidArgumentError("ttl must be a positive number of minutes")
        return text, indexed, fields, self._scope(tuple(op.namespace))

    def _write(self, puts: list[PutOp], now: int) -> None:
        """Apply the batch's puts in one transaction, after validating all of them."""
        checked = [(op, self._check(op)) for op in puts]
        replica = self.replica
        with replica.batch():
            for op, plan in checked:
                namespace = tuple(op.namespace)
                ids = sorted(self._by_key.get((namespace, op.key), ()))
                current = self._current(namespace, op.key, now)
                if plan is None:
                    for memory_id in ids:
                        replica.delete(memory_id)
                    continue
                text, indexed, fields, scope = plan
                mark = {"ns": list(namespace), "key": op.key, "value": dict(op.value or {}),
                        "ttl": op.ttl, "indexed": indexed, "fields": fields,
                        "created_ms": current.created_ms if current is not None else now}
                metadata = {MARK: mark}
                if current is not None and current.ttl is None and op.ttl is None:
                    replica.update(current.memory_id, text, metadata=metadata,
                                   actor=self.actor)
                    keep = current.memory_id
                else:
                    keep = replica.add(text, metadata=metadata, actor=self.actor,
                                       policy=self.policy,
                                       ttl=None if op.ttl is None else op.ttl * 60.0,
                                       **scope)
                for memory_id in ids:
                    if memory_id != keep:
                        replica.delete(memory_id)

    # -- operations -----------------------------------------------------------------------

    def sweep_expired(self) -> int:
        """Purge expired memories from the replica now (``replica.collect_expired``);
        return how many. Reads never return expired items even without a sweep."""
        with self._lock:
            count = int(self.replica.collect_expired())
            self._refresh()
            return count

"""``SemanticIndex``: scoped, exact semantic search over one replica's memories.

One row per standing version (a conflicted memory is found by any of its versions and
ranked by its best), kept current from the replica's change journal: only the memories
that changed are re-read, local or merged from a peer, and a journal reset rescans
(storage's ``JournalFollower``, the one journal cursor every derived view uses).
Vectors come from a ``CachedEmbedder`` over the replica's aux store, so a rescan after a
restart runs no model. Every filter applies *before* ranking: scope, expiry (the index's
clock at query time: expiry writes nothing to the journal), privacy (another
replica's private memory is never a candidate), a ``ScopedView``'s tiers, metadata
filters (storage's one evaluator, on each row's version metadata) and a minimum score.
Each hit's record is read (through a small cache the journal invalidates, so never
older than its row) and its scope re-checked, so a stale row can only drop a result,
never leak one. Unscoped, every row is scored in one matrix-vector product over the
contiguous float32 matrix; a narrow scope gathers and scores only its rows.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from memmesh.crdt import base_replica
from memmesh.storage import SCOPE_TIERS, JournalFollower, compile_filter

from ._ann import AnnConfig, AnnIndex, load_faiss
from ._cache import CachedEmbedder, content_key
from ._embedding import Embedder, check_embeddings
from ._errors import InvalidQueryError
from ._record_cache import CachedRecord, CachedVersion, RecordCache, scope_of
from ._replica import IndexedReplica
from ._rows import NONE_CODE, SCOPE_FIELDS, RowData, RowStore
from ._scoring import ScoreParts, ScoreWeights, top_k

JOURNAL_PAGE = 1000
RESCAN_PAGE = 1000  # memories read (and embedded) at a time by a rescan
QUERY_CACHE_SIZE = 256
#: Extra candidates fetched beyond k, covering hits that vanish between scan and read.
SLACK = 8


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    ``record`` is the memory (a ``MemoryRecord``), ``version`` the standing version that
    matched, ``similarity`` the raw cosine, ``parts`` the weighted contributions of the
    score (similarity, recency, confidence, trust), which sum to ``score``.
    """

    record: Any
    version: Any
    score: float
    similarity: float
    parts: ScoreParts

    @property
    def id(self) -> str:
        return str(self.record.id)

    @property
    def text(self) -> str:
        return str(self.version.text)

    @property
    def scope_tier(self) -> str | None:
        """The view tier of the memory (``MemoryRecord.scope_tier``: run, agent, user,
        app; None for a memory that sets no scope field)."""
        tier = getattr(self.record, "scope_tier", None)
        return None if tier is None else str(tier)


def _wall_ms(timestamp: Any) -> float:
    return float(getattr(timestamp, "wall_ms", 0))


def _tier_rank(tier: str | None) -> int:
    return SCOPE_TIERS.index(tier) if tier in SCOPE_TIERS else len(SCOPE_TIERS)


@dataclass(frozen=True, slots=True)
class _Query:
    """A search's checked filters: scope equality, a view, metadata, minimum score."""

    scope: dict[str, str | None]
    view: Any
    predicate: Callable[[Mapping[str, Any]], bool] | None
    threshold: float | None


_UNFILTERED = _Query({}, None, None, None)


class SemanticIndex:
    """Semantic search over ``replica``, kept current from its change journal.

    ``embedder`` defaults to :class:`~memmesh.semantic.SentenceTransformerEmbedder`
    (bundled all-MiniLM-L6-v2, CPU). ``weights`` configures the ranking
    (:class:`~memmesh.semantic.ScoreWeights`); ``clock`` returns wall milliseconds and
    defaults to the replica's, so expiry is judged as storage judges it. ``ann=True``
    (or an :class:`~memmesh.semantic.AnnConfig`) finds candidates in an HNSW graph
    (extra ``memmesh[ann]``) instead of scanning every row, for large replicas; scope
    and every other filter stay exact, recall is approximate (docs/search.md).
    """

    def __init__(
        self,
        replica: IndexedReplica,
        embedder: Embedder | None = None,
        *,
        weights: ScoreWeights | None = None,
        clock: Callable[[], int] | None = None,
        ann: bool | AnnConfig = False,
    ) -> None:
        if ann is True:
            ann = AnnConfig()
        if ann is not False and not isinstance(ann, AnnConfig):
            raise InvalidQueryError("ann must be a bool or an AnnConfig")
        if ann:
            load_faiss()  # no extra: one typed error now, not at the first search
        if embedder is None:
            from ._sentence_transformer import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        self.replica = replica
        # encrypted at rest: vectors are content too, kept in memory only (no aux rows)
        encrypted = bool(getattr(replica, "encrypted_at_rest", False))
        self.embedder = CachedEmbedder(embedder, None if encrypted else replica)
        self.weights = weights or ScoreWeights()
        self._clock: Callable[[], int] = clock or replica.clock
        self._rows: RowStore | None = None
        self._follower = JournalFollower(replica, page=JOURNAL_PAGE)  # starts with a rescan
        self._records = RecordCache(self._read_record)  # hits' records, dropped as they change
        self.ann_config: AnnConfig | None = ann or None
        self.ann: AnnIndex | None = None  # built at the first search that can use it
        # its file lies beside the LMDB data, unless the replica is encrypted at rest
        self._ann_directory = None if encrypted else getattr(replica, "path", None)
        self._queries: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self.rescans = 0
        self.reindexed = 0
        self._lock = threading.RLock()  # one index may serve a gossip thread and callers

    # -- keeping up with the replica -------------------------------------------------

    @property
    def replica_id(self) -> str:
        return self.replica.replica_id

    def __len__(self) -> int:
        """Number of indexed versions."""
        self.refresh()
        return 0 if self._rows is None else len(self._rows)

    def refresh(self) -> int:
        """Bring the index up to date with the replica; return how many memories were
        re-read. Called by every search, so explicit calls are only for warming up."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        count = 0

        def changed(memory_ids: list[str]) -> None:
            nonlocal count
            self._reindex(memory_ids)
            count += len(memory_ids)

        def rebuild() -> None:
            nonlocal count
            count += self._rescan()

        self._follower.catch_up(changed, rebuild)
        return count

    def _rescan(self) -> int:
        """Re-read every memory, a page at a time (memory holds one page of records and
        their vectors, not the replica: 8.5 GB at 1M memories read whole). The follower
        read the journal position first, so a change racing with this, between pages
        or not, is replayed by the next refresh."""
        self._records.clear()
        if self._rows is not None:
            self._rows.clear()
        count = 0
        for records in self.replica.pages(RESCAN_PAGE):
            self._put(records)
            count += len(records)
        self.rescans += 1
        return count

    def _reindex(self, memory_ids: Sequence[str]) -> None:
        """Re-read changed memories; one that left (forgotten, deleted, expired) takes
        its cached vectors off the disk too."""
        records = []
        gone: list[bytes] = []
        self._records.drop(memory_ids)
        for memory_id in memory_ids:
            dropped = [] if self._rows is None else self._rows.remove(memory_id)
            record = self.replica.get(memory_id)
            if record is not None and getattr(record, "versions", None):
                records.append(record)
            else:
                gone.extend(dropped)
        self._put(records)
        self.embedder.forget(gone)

    def _hidden(self, record: Any) -> bool:
        """A private memory that another replica created: never searchable here."""
        if getattr(record, "tier", "shared") != "private":
            return False
        origin = getattr(getattr(record, "created_at", None), "replica", None)
        return origin is not None and base_replica(origin) != self.replica_id

    def _put(self, records: Iterable[Any]) -> None:
        records = [r for r in records if getattr(r, "versions", None)]
        if not records:
            return
        texts = [v.text for r in records for v in r.versions]
        vectors = self.embedder.embed(texts)
        if self._rows is None:
            self._rows = RowStore(int(vectors.shape[1]))
        elif vectors.shape[1] != self._rows.dimension:
            raise InvalidQueryError("embedder dimension changed under the index")
        position = 0
        for record in records:
            scope = scope_of(record)
            expires = record.expires_at
            hidden = self._hidden(record)
            rows = []
            for i, version in enumerate(record.versions):
                rows.append(
                    RowData(
                        vector=vectors[position],
                        scope=scope,
                        tier=str(getattr(record, "tier", "shared")),
                        expires_ms=float(expires) if expires is not None else np.inf,
                        timestamp_ms=_wall_ms(version.timestamp),
                        prior=self.weights.prior(version.confidence, version.actor),
                        hidden=hidden,
                        secondary=i > 0,
                        single=len(record.versions) == 1,
                        dot=version.dot,
                        metadata=version.metadata,
                        content=content_key(version.text),
                    )
                )
                position += 1
            self._rows.put(record.id, rows)
        self.reindexed += len(records)

    # -- search ----------------------------------------------------------------------

    def embed_query(self, query: str) -> npt.NDArray[np.float32]:
        """The query's unit vector (memoised in process; queries are not persisted)."""
        vector = self._queries.get(query)
        if vector is None:
            vector = check_embeddings(self.embedder.embedder.embed([query]), 1)[0]
            self._queries[query] = vector
            if len(self._queries) > QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
        else:
            self._queries.move_to_end(query)
        return vector

    @staticmethod
    def _check_filters(scope_filters: dict[str, Any]) -> dict[str, str | None]:
        """Validate scope filters. As in ``replica.list``, a filter given as None matches
        memories without that field; leave a field out to not filter on it."""
        unknown = set(scope_filters) - set(SCOPE_FIELDS)
        if unknown:
            raise InvalidQueryError(
                f"unknown scope filter(s) {sorted(unknown)}; use {', '.join(SCOPE_FIELDS)}"
            )
        for name, value in scope_filters.items():
            if value is not None and not isinstance(value, str):
                raise InvalidQueryError(f"{name} must be a str or None")
        return dict(scope_filters)

    def _mask(
        self, filters: dict[str, str | None], now_ms: float, tier: str | None = None
    ) -> npt.NDArray[np.bool_] | None:
        """Over every row: alive, in scope (and tier), unexpired, not hidden (None: a
        filter names a value no row holds, so nothing can match)."""
        rows = self._rows
        if rows is None:
            return None
        n = rows.size
        mask = rows.alive[:n] & ~rows.hidden[:n] & (rows.expires[:n] > now_ms)
        wanted = [(SCOPE_FIELDS.index(name), value) for name, value in filters.items()]
        if tier is not None:
            wanted.append((len(SCOPE_FIELDS), tier))
        for column, value in wanted:
            code = rows.code(column, value)
            if code is None:
                return None
            mask &= rows.scope[:n, column] == code
        return mask

    def _candidates(
        self, filters: dict[str, str | None], now_ms: float, tier: str | None = None
    ) -> npt.NDArray[np.intp]:
        """The rows of :meth:`_mask`, as indices."""
        mask = self._mask(filters, now_ms, tier)
        return np.zeros(0, dtype=np.intp) if mask is None else np.flatnonzero(mask)

    def _read_record(self, memory_id: str) -> CachedRecord | None:
        """``memory_id``'s record as a hit re-checks it, each of its current rows mapped
        to the standing version it was indexed from (None: gone). Called under the lock
        after a refresh, so the rows are current."""
        record = self.replica.get(memory_id)
        if record is None:
            return None
        rows = self._rows
        slots = [] if rows is None else rows.rows_of.get(memory_id, [])
        by_row: dict[int, CachedVersion] = {}
        for version in getattr(record, "versions", None) or ():
            row = next((r for r in slots if rows is not None and rows.dots[r] == version.dot),
                       None)
            if row is not None:
                confidence_part, trust_part = self.weights.version_parts(version.confidence,
                                                                         version.actor)
                by_row[row] = CachedVersion(version, _wall_ms(version.timestamp),
                                            confidence_part, trust_part)
        expires = record.expires_at
        return CachedRecord(record, scope_of(record),
                            math.inf if expires is None else float(expires),
                            self._hidden(record), by_row)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        now_ms: int | None = None,
        view: Any = None,
        filters: Mapping[str, Any] | None = None,
        threshold: float | None = None,
        offset: int = 0,
        **scope_filters: Any,
    ) -> list[Hit]:
        """The ``k`` best memories for ``query`` within the scope filters or a view.

        ``scope_filters`` are ``app_id``, ``user_id``, ``agent_id``, ``run_id``, matched by
        equality as in ``replica.list`` (None matches an absent field). ``view``, a
        :class:`memmesh.storage.ScopedView` of this replica (``replica.view(...)``),
        searches what it sees instead (its app, user, agent and run tiers; not combined
        with scope filters); on equal score the most specific tier comes first.
        ``filters`` are metadata filters (``$eq $ne $gt $gte $lt $lte $in $nin``,
        ``$and``/``$or``; :func:`memmesh.storage.compile_filter`) on the matched version,
        ``threshold`` a minimum score; both apply before ranking, so a memory they drop
        never takes a top-k slot. ``offset`` skips that many of the best. Results are
        ordered best first; each memory appears once.
        """
        if not isinstance(query, str):
            raise InvalidQueryError("query must be a str")
        return self.search_vector(self.embed_query(query), k, now_ms=now_ms, view=view,
                                  filters=filters, threshold=threshold, offset=offset,
                                  **scope_filters)

    def search_vector(
        self,
        vector: npt.NDArray[np.float32],
        k: int = 10,
        *,
        now_ms: int | None = None,
        view: Any = None,
        filters: Mapping[str, Any] | None = None,
        threshold: float | None = None,
        offset: int = 0,
        **scope_filters: Any,
    ) -> list[Hit]:
        """:meth:`search` for an already embedded query (unit vector)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidQueryError("k must be a positive int")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidQueryError("offset must be a non-negative int")
        if threshold is not None and (isinstance(threshold, bool)
                                      or not isinstance(threshold, int | float)
                                      or math.isnan(threshold)):
            raise InvalidQueryError("threshold must be a number (a minimum score) or None")
        if scope_filters or view is not None or filters is not None or threshold is not None:
            query = _Query(self._check_filters(scope_filters),
                           self._check_view(view, scope_filters), compile_filter(filters),
                           None if threshold is None else float(threshold))
        else:
            query = _UNFILTERED
        with self._lock:
            self._refresh()
            vector = self._check_vector(vector)
            return self._search(vector, k + offset, query, now_ms)[offset:]

    def _check_vector(self, vector: Any) -> npt.NDArray[np.float32]:
        """The query as the matrix's dtype (a float64 query would make the product
        upcast every row), of the rows' dimension and finite."""
        if type(vector) is not np.ndarray or vector.dtype != np.float32:
            try:
                vector = np.asarray(vector, dtype=np.float32)
            except (TypeError, ValueError) as error:
                raise InvalidQueryError("the query vector must be numbers") from error
        dimension = None if self._rows is None else self._rows.dimension
        if vector.ndim != 1 or (dimension is not None and vector.shape[0] != dimension):
            raise InvalidQueryError(f"the query vector must be 1-d of length {dimension}, "
                                    f"got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise InvalidQueryError("the query vector must be finite")
        checked: npt.NDArray[np.float32] = vector
        return checked

    def _check_view(self, view: Any, scope_filters: Mapping[str, Any]) -> Any:
        if view is None:
            return None
        if scope_filters:
            raise InvalidQueryError("give a view or scope filters, not both")
        if not all(hasattr(view, name) for name in ("scope", "visible", "replica_id")):
            raise InvalidQueryError("view must be a ScopedView (replica.view(...))")
        if view.replica_id != self.replica_id:
            raise InvalidQueryError(
                f"the view reads replica {view.replica_id!r}, this index {self.replica_id!r}")
        return view

    def _view_mask(self, view: Any, n: int) -> npt.NDArray[np.bool_]:
        """Rows whose every set scope field equals the view's, with one field set."""
        rows = self._rows
        assert rows is not None
        scoped = np.zeros(n, dtype=bool)
        mask = np.ones(n, dtype=bool)
        for column, name in enumerate(SCOPE_FIELDS):
            values = rows.scope[:n, column]
            unset = values == NONE_CODE
            scoped |= ~unset
            code = rows.code(column, view.scope[name])
            if view.scope[name] is not None and code is not None:
                mask &= unset | (values == code)
            else:
                mask &= unset
        return mask & scoped

    def _approximate(self, vector: npt.NDArray[np.float32], want: int,
                     mask: npt.NDArray[np.bool_] | None, count: int
                     ) -> npt.NDArray[np.intp] | None:
        """Candidate rows from the HNSW graph, filtered by the exact ``mask``; None when
        the exact scan is due (few rows, a narrow scope, too few candidates survive)."""
        rows, config = self._rows, self.ann_config
        assert rows is not None and config is not None
        n = rows.size
        if count < config.min_rows or count < config.narrow_fraction * n:
            return None
        if self.ann is None:
            self.ann = AnnIndex(config, rows.dimension, self._ann_directory,
                                self.embedder.name)
        self.ann.sync(rows)
        fetch = min(n, math.ceil(want * config.oversample * n / count))
        found = self.ann.search(vector, fetch)
        if mask is not None:
            found = found[mask[found]]
        return found if found.size >= min(want, count) else None

    def _search(
        self,
        vector: npt.NDArray[np.float32],
        k: int,
        query: _Query,
        now_ms: int | None,
    ) -> list[Hit]:
        now = float(self._clock() if now_ms is None else now_ms)
        rows = self._rows
        if rows is None:
            return []
        n = rows.size
        mask: npt.NDArray[np.bool_] | None = None  # None: every row is a candidate
        if query.scope or query.view is not None or query.predicate is not None or \
                not rows.all_candidates(now):
            mask = self._mask(query.scope, now)
            if mask is None:
                return []
            if query.view is not None:
                mask &= self._view_mask(query.view, n)
            if query.predicate is not None:
                predicate = query.predicate
                inside = np.flatnonzero(mask)
                keep = np.fromiter((predicate(rows.metadata[int(r)]) for r in inside),
                                   dtype=bool, count=inside.size)
                mask[inside[~keep]] = False
        count = n if mask is None else int(np.count_nonzero(mask))
        if count == 0:
            return []
        # Dense (unscoped, or a scope holding a third of the rows and more): score every
        # row in one matrix-vector product over the contiguous matrix, with no gather, and
        # rule the rest out by a -inf score. Sparse: gather the in-scope rows and score
        # only those.
        # Each memory counts once (its best version); fetching `extra` more rows than k,
        # one per secondary version in scope, keeps the top k distinct memories exact.
        extra = (rows.secondary_rows if mask is None
                 else int(np.count_nonzero(rows.secondary[:n] & mask)))
        chosen = None
        if self.ann_config is not None:
            chosen = self._approximate(vector, k + extra + SLACK, mask, count)
        if chosen is None and mask is not None and count * 3 <= n:
            chosen = np.flatnonzero(mask)
        matrix = rows.vectors[:n] if chosen is None else rows.vectors[chosen]
        similarity = matrix @ vector
        w = self.weights
        scores = similarity * np.float32(w.similarity) if w.similarity != 1.0 else similarity
        if w.recency:
            stamps = rows.timestamps[:n] if chosen is None else rows.timestamps[chosen]
            scores = scores + (w.recency * w.recency_factor(stamps, now)).astype(np.float32)
        if w.confidence or w.trust:
            scores = scores + (rows.prior[:n] if chosen is None else rows.prior[chosen])
        if chosen is None and mask is not None and count < n:
            scores = np.where(mask, scores, np.float32(-np.inf))
        if query.threshold is not None:
            scores = np.where(scores >= query.threshold, scores, np.float32(-np.inf))
        hits: list[Hit] = []
        seen: set[str] = set()
        top = top_k(scores, k + extra + SLACK)
        winners = top if chosen is None else chosen[top]
        scope = [(SCOPE_FIELDS.index(name), value) for name, value in query.scope.items()]
        owner, records, view, wanted = rows.owner, self._records, query.view, query.predicate
        for score, cosine, row in zip(scores[top].tolist(), similarity[top].tolist(),
                                      winners.tolist(), strict=True):
            if score == -math.inf:
                break  # ruled out, and so is every row after it
            memory_id = owner[row]
            if memory_id is None or memory_id in seen:
                continue
            seen.add(memory_id)
            entry = records.get(memory_id)
            if entry is None or entry.hidden or entry.expires_ms <= now \
                    or (scope and not entry.in_scope(scope)) \
                    or (view is not None and not view.visible(entry.record)):
                continue
            found = entry.rows.get(row)
            if found is None or (wanted is not None and not wanted(found.version.metadata)):
                continue
            parts = ScoreParts(w.similarity * cosine,
                               w.recency_part(found.timestamp_ms, now) if w.recency else 0.0,
                               found.confidence_part, found.trust_part)
            hits.append(Hit(entry.record, found.version, score, cosine, parts))
            if len(hits) == k:
                break
        if query.view is not None:  # equal scores: the most specific tier first
            hits.sort(key=lambda h: (-h.score, _tier_rank(h.scope_tier)))
        return hits

    # -- near-duplicates ---------------------------------------------------------------

    def find_duplicate(
        self,
        text: str,
        *,
        threshold: float = 0.95,
        tier: str = "shared",
        now_ms: int | None = None,
        **scope: Any,
    ) -> tuple[str, float] | None:
        """The live memory in exactly this scope and tier whose text is closest to
        ``text`` with cosine >= ``threshold``, as ``(memory_id, cosine)``; else None.

        Exact scope: a field left out must be absent on the match too (unlike a search,
        where it is not filtered on), so a duplicate is never found in a neighbouring scope.
        """
        self._check_filters(scope)
        filters = {name: scope.get(name) for name in SCOPE_FIELDS}
        vector = self.embedder.embed([text])[0]
        with self._lock:
            self._refresh()
            rows = self._rows
            now = float(self._clock() if now_ms is None else now_ms)
            candidates = self._candidates(filters, now, tier)
            if rows is None or candidates.size == 0:
                return None
            similarity = rows.vectors[candidates] @ vector
            best = int(np.argmax(similarity))
            memory_id = rows.owner[int(candidates[best])]
        if float(similarity[best]) < threshold or memory_id is None:
            return None
        return memory_id, float(similarity[best])

    def add(
        self,
        text: str,
        *,
        dedupe: bool = False,
        threshold: float = 0.95,
        actor: str | None = None,
        **options: Any,
    ) -> str:
        """``replica.add(text, ...)``, or, with ``dedupe=True``, a NOOP when a live memory
        in the same scope and tier already says the same (cosine >= ``threshold``): the
        existing id is returned and a NOOP event is recorded on it."""
        if dedupe:
            scope = {name: options.get(name) for name in SCOPE_FIELDS}
            tier = options.get("tier") or self._default_tier(scope)
            found = self.find_duplicate(text, threshold=threshold, tier=tier, **scope)
            if found is not None:
                memory_id, similarity = found
                self._record_noop(
                    memory_id, actor,
                    {"reason": "near-duplicate", "similarity": round(similarity, 6), "text": text},
                )
                return memory_id
        memory_id = str(self.replica.add(text, actor=actor, **options))
        return memory_id

    def _record_noop(self, memory_id: str, actor: str | None, detail: dict[str, Any]) -> None:
        """Record a NOOP event (history only, no state change) on ``memory_id``."""
        self.replica.record_noop(memory_id, actor=actor, detail=detail)

    @staticmethod
    def _default_tier(scope: dict[str, Any]) -> str:
        """Storage's default tier: run-scoped memories are private unless said otherwise."""
        return "private" if scope.get("run_id") is not None else "shared"

    def merge_near_duplicates(
        self, *, threshold: float = 0.95, actor: str | None = None, now_ms: int | None = None
    ) -> list[tuple[str, str]]:
        """Fold memories that say the same thing into one, by a rule every replica agrees on.

        Concurrent near-duplicate adds on two replicas create two memories; after sync,
        each replica finds the same groups (single-version memories in the same exact
        scope and tier, cosine >= ``threshold``, linked transitively) and keeps the one
        created first (hybrid timestamp, then id), deleting the others (DELETE events by
        ``actor``, naming the survivor in ``detail["merged_into"]``) and recording a
        NOOP on the survivor. Returns ``(kept_id, dropped_id)`` pairs.
        """
        now = float(self._clock() if now_ms is None else now_ms)
        with self._lock:
            self._refresh()
            clusters = self._duplicate_clusters(threshold, now)
        merged: list[tuple[str, str]] = []
        for ids in clusters:
            records = [r for r in (self.replica.get(i) for i in ids) if r is not None]
            if len(records) < 2:
                continue
            records.sort(key=lambda r: (r.created_at, r.id))
            keeper = records[0]
            for duplicate in records[1:]:
                self.replica.delete(duplicate.id, actor=actor,
                                    detail={"reason": "near-duplicate",
                                            "merged_into": keeper.id})
                self._record_noop(
                    keeper.id, actor,
                    {"reason": "near-duplicate", "merged": duplicate.id,
                     "text": duplicate.versions[0].text},
                )
                merged.append((keeper.id, duplicate.id))
        return merged

    def _duplicate_clusters(self, threshold: float, now: float) -> list[list[str]]:
        """Groups (of two or more) of near-duplicate single-version memories sharing an
        exact scope and tier: connected components of the cosine >= threshold graph."""
        rows = self._rows
        if rows is None:
            return []
        n = rows.size
        eligible = rows.alive[:n] & rows.single[:n] & ~rows.hidden[:n] & (rows.expires[:n] > now)
        candidates = np.flatnonzero(eligible)
        if candidates.size < 2:
            return []
        parent = {int(r): int(r) for r in candidates}

        def find(row: int) -> int:
            while parent[row] != row:
                parent[row] = parent[parent[row]]
                row = parent[row]
            return row

        groups: dict[tuple[int, ...], list[int]] = {}
        for row in candidates:
            groups.setdefault(tuple(int(c) for c in rows.scope[row]), []).append(int(row))
        for members in groups.values():
            if len(members) < 2:
                continue
            index = np.array(members, dtype=np.intp)
            matrix = rows.vectors[index]
            for start in range(0, len(members), 256):
                block = matrix[start : start + 256] @ matrix.T
                ii, jj = np.nonzero(block >= threshold)
                for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
                    a, b = members[start + i], members[j]
                    if a < b:
                        ra, rb = find(a), find(b)
                        if ra != rb:
                            parent[max(ra, rb)] = min(ra, rb)
        clusters: dict[int, list[str]] = {}
        for row in candidates:
            memory_id = rows.owner[int(row)]
            if memory_id is not None:
                clusters.setdefault(find(int(row)), []).append(memory_id)
        return [ids for ids in clusters.values() if len(ids) > 1]

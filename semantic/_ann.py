"""``AnnIndex``: an optional HNSW graph over the index's rows (extra ``memmesh[ann]``).

Hierarchical navigable small-world graphs (Malkov & Yashunin, 2016, "Efficient and
robust approximate nearest neighbor search using HNSW graphs"), as implemented by faiss
(``IndexHNSWFlat``, inner product on unit vectors). HNSW cannot delete, so the graph is
append-only and every label (its insertion number) remembers the row and the row's
write stamp it was added for: a label whose row was removed or rewritten since is dead
and dropped from results, and when dead labels pass ``rebuild_fraction`` of the graph
it is rebuilt from the live rows. New rows are added on the next search, found through
the rows' write stamps (the rows follow the change journal). The graph is saved beside
the LMDB data with the memory id and content key of each label, so a restarted index
maps the labels back to its rescanned rows and only adds what changed; an index over a
replica encrypted at rest keeps it in memory only (vectors are content).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from ._errors import InvalidQueryError, MissingDependencyError
from ._rows import RowStore

FORMAT = 1


@dataclass(frozen=True, slots=True)
class AnnConfig:
    """HNSW parameters (``m`` links per node, ``ef_construction``, ``ef_search``) and
    when to use the graph: from ``min_rows`` candidate rows up, and for a scope holding
    at least ``narrow_fraction`` of the rows (a narrower scope is scanned exactly);
    ``oversample`` times the wanted rows, divided by the scope's share, are fetched and
    then filtered by the exact scope. ``rebuild_fraction``: dead labels that trigger a
    rebuild; ``save_every``: labels added since the last save that trigger a save."""

    m: int = 32
    ef_construction: int = 128
    ef_search: int = 512
    min_rows: int = 5_000
    narrow_fraction: float = 0.05
    oversample: float = 2.0
    rebuild_fraction: float = 0.25
    save_every: int = 10_000

    def __post_init__(self) -> None:
        for name in ("m", "ef_construction", "ef_search", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidQueryError(f"AnnConfig.{name} must be a positive int")
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int) \
                or self.min_rows < 0:
            raise InvalidQueryError("AnnConfig.min_rows must be an int >= 0")
        for name in ("narrow_fraction", "rebuild_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise InvalidQueryError(f"AnnConfig.{name} must be in (0, 1]")
        if not self.oversample >= 1.0:
            raise InvalidQueryError("AnnConfig.oversample must be >= 1")


def load_faiss() -> Any:
    """The ``faiss`` module, or a :class:`MissingDependencyError` naming the extra."""
    try:
        import faiss
    except ImportError as error:
        raise MissingDependencyError("faiss-cpu", needed_by="the approximate index (ann=True)",
                                     extra="ann") from error
    return faiss


class AnnIndex:
    """The HNSW graph over ``rows``' vectors; ``directory`` None keeps it in memory."""

    def __init__(self, config: AnnConfig, dimension: int, directory: str | None,
                 embedder_name: str) -> None:
        self.faiss = load_faiss()
        self.config = config
        self.dimension = dimension
        stem = hashlib.sha256(embedder_name.encode()).hexdigest()[:16]
        self.path = None if directory is None else Path(directory) / f"ann-{stem}"
        self.graph: Any = None
        self.label_row = np.zeros(0, dtype=np.int64)  # -1: dead
        self.label_stamp = np.zeros(0, dtype=np.int64)
        self.synced = -1  # rows' write counter when last synced
        self.unsaved = 0
        self.builds = 0
        self.loaded = False

    def _new_graph(self) -> Any:
        graph = self.faiss.IndexHNSWFlat(self.dimension, self.config.m,
                                         self.faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.config.ef_construction
        return graph

    @property
    def live(self) -> int:
        return int(np.count_nonzero(self.label_row >= 0))

    def sync(self, rows: RowStore) -> None:
        """Add the rows written since the last sync; rebuild when too many labels died."""
        if self.graph is None:
            if not self._load(rows):
                self._build(rows)
                return
        elif rows.writes == self.synced:
            return
        n = rows.size
        valid = self.label_row >= 0
        rows_of = self.label_row[valid]
        stale = ~rows.alive[rows_of] | (rows.stamp[rows_of] != self.label_stamp[valid])
        self.label_row[np.flatnonzero(valid)[stale]] = -1
        total = self.label_row.shape[0]
        if total and (total - self.live) > self.config.rebuild_fraction * total:
            self._build(rows)
            return
        covered = np.zeros(n, dtype=bool)
        covered[self.label_row[self.label_row >= 0]] = True
        fresh = np.flatnonzero(rows.alive[:n] & ~covered)
        if fresh.size:
            self._add(rows, fresh)
        self.synced = rows.writes
        if self.unsaved >= self.config.save_every:
            self.save(rows)

    def _add(self, rows: RowStore, fresh: npt.NDArray[np.intp]) -> None:
        self.graph.add(np.ascontiguousarray(rows.vectors[fresh]))
        self.label_row = np.concatenate([self.label_row, fresh.astype(np.int64)])
        self.label_stamp = np.concatenate([self.label_stamp, rows.stamp[fresh]])
        self.unsaved += int(fresh.size)

    def _build(self, rows: RowStore) -> None:
        self.graph = self._new_graph()
        self.label_row = np.zeros(0, dtype=np.int64)
        self.label_stamp = np.zeros(0, dtype=np.int64)
        self._add(rows, np.flatnonzero(rows.alive[: rows.size]))
        self.synced = rows.writes
        self.builds += 1
        self.save(rows)

    def search(self, vector: npt.NDArray[np.float32], want: int) -> npt.NDArray[np.intp]:
        """Up to ``want`` live rows nearest ``vector`` (approximate), best first."""
        total = self.label_row.shape[0]
        if total == 0:
            return np.zeros(0, dtype=np.intp)
        want = min(want, total)
        params = self.faiss.SearchParametersHNSW()
        params.efSearch = max(self.config.ef_search, want)
        _, labels = self.graph.search(vector.reshape(1, -1), want, params=params)
        found = labels[0][labels[0] >= 0]
        rows: npt.NDArray[np.int64] = self.label_row[found]
        return rows[rows >= 0].astype(np.intp)

    # -- the file beside the LMDB data ------------------------------------------------

    def save(self, rows: RowStore) -> None:
        """Write the graph and its labels' (memory id, content key) beside the data."""
        if self.path is None or self.graph is None:
            return
        keys = [None if row < 0 else (rows.owner[row], rows.content[row])
                for row in self.label_row.tolist()]
        meta = {"format": FORMAT, "dimension": self.dimension, "labels": keys}
        tmp = self.path.with_suffix(".tmp")
        self.faiss.write_index(self.graph, str(tmp))
        os.replace(tmp, self.path.with_suffix(".faiss"))
        tmp.write_bytes(msgpack.packb(meta))
        os.replace(tmp, self.path.with_suffix(".meta"))
        self.unsaved = 0

    def _load(self, rows: RowStore) -> bool:
        """Map a saved graph's labels onto ``rows`` (False: none, or unusable)."""
        if self.path is None:
            return False
        graph_file, meta_file = self.path.with_suffix(".faiss"), self.path.with_suffix(".meta")
        try:
            meta = msgpack.unpackb(meta_file.read_bytes())
            graph = self.faiss.read_index(str(graph_file))
        except (OSError, ValueError, RuntimeError, msgpack.UnpackException):
            return False
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if (meta.get("format") != FORMAT or meta.get("dimension") != self.dimension
                or not isinstance(labels, list) or graph.ntotal != len(labels)
                or graph.d != self.dimension):
            return False
        where = {(owner, rows.content[row]): row
                 for owner, slots in rows.rows_of.items() for row in slots}
        label_row = np.full(len(labels), -1, dtype=np.int64)
        for label, key in enumerate(labels):
            if isinstance(key, list) and len(key) == 2:
                label_row[label] = where.get((key[0], key[1]), -1)
        self.graph = graph
        self.label_row = label_row
        self.label_stamp = np.where(label_row >= 0, rows.stamp[np.maximum(label_row, 0)], -1)
        self.loaded = True
        self.synced = -1
        return True

"""The embedding cache and forgotten memories: a forgotten memory's vector leaves the
index and the disk cache when the index sees its FORGET (local or merged from a peer);
an index over a replica encrypted at rest keeps vectors in memory only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.semantic._cache import content_key
from memmesh.storage import Replica

CANARY = "semantic canary: the vault opens at dawn"
KEY = bytes(range(32))


def _cached(replica: Replica, index: SemanticIndex, text: str) -> bytes | None:
    return replica.aux_get(index.embedder.namespace, content_key(text))


def test_a_local_forget_drops_the_cached_vector_and_the_index_rows(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r") as r:
        index = SemanticIndex(r, HashingEmbedder())
        memory_id = r.add(CANARY, user_id="alice")
        r.add("an unrelated memory", user_id="alice")
        assert index.search("vault dawn", user_id="alice")[0].record.id == memory_id
        assert _cached(r, index, CANARY) is not None
        r.forget(memory_id)
        assert [h.record.id for h in index.search("vault dawn", user_id="alice")] != [memory_id]
        assert _cached(r, index, CANARY) is None
        assert _cached(r, index, "an unrelated memory") is not None
        rows = index._rows
        assert rows is not None and not np.any(rows.vectors[~rows.alive])


def test_a_forget_merged_from_a_peer_drops_the_peers_cached_vector(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as a, Replica.open(tmp_path / "b") as b:
        memory_id = a.add(CANARY, user_id="alice")
        b.sync_apply(a.sync_changes(b.sync_summary()))
        index = SemanticIndex(b, HashingEmbedder())
        assert index.search("vault", user_id="alice")[0].record.id == memory_id
        assert _cached(b, index, CANARY) is not None
        a.forget(memory_id)
        b.sync_apply(a.sync_changes(b.sync_summary()))
        assert index.search("vault", user_id="alice") == []
        assert _cached(b, index, CANARY) is None


def test_an_encrypted_replicas_index_persists_no_vector(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", at_rest_key=KEY) as r:
        index = SemanticIndex(r, HashingEmbedder())
        r.add(CANARY, user_id="alice")
        assert index.search("vault", user_id="alice")
        assert index.embedder.store is None
        assert _cached(r, index, CANARY) is None
        with r._env.read() as txn:
            assert list(txn.prefix("aux", b"emb/")) == []

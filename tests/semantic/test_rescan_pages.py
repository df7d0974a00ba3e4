"""A rescan reads the replica a page at a time (bounded memory), with the same results
as reading it whole, and misses nothing written while it runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.semantic import _index as index_module
from memmesh.storage import Replica

TEXTS = ["green tea in the morning", "the deploy runs on friday", "buy oat milk",
         "a heron in the river", "tea with lemon", "friday standup notes"]


def fill(r: Replica) -> list[str]:
    ids = [r.add(f"{TEXTS[i % len(TEXTS)]} {i}", user_id=f"u{i % 3}") for i in range(20)]
    r.update(ids[2], "now about coffee")
    r.delete(ids[3])
    return ids


def ranked(index: SemanticIndex, query: str, **scope: Any) -> list[tuple[str, float]]:
    return [(h.id, round(h.score, 6)) for h in index.search(query, k=25, **scope)]


def test_a_rescan_reads_pages_and_finds_what_a_whole_read_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        fill(r)
        whole = SemanticIndex(r, HashingEmbedder())
        expected = {q: ranked(whole, q) for q in ("tea", "friday", "coffee")}
        expected["scoped"] = ranked(whole, "tea", user_id="u1")
        sizes: list[int] = []
        pages = r.pages

        def spy(size: int = 1000) -> Iterator[Sequence[Any]]:
            for page in pages(size):
                sizes.append(len(page))
                yield page

        monkeypatch.setattr(r, "pages", spy)
        monkeypatch.setattr(r, "list", lambda **_: pytest.fail("a rescan read everything"))
        monkeypatch.setattr(index_module, "RESCAN_PAGE", 3)
        paged = SemanticIndex(r, HashingEmbedder())
        assert len(paged) == 19 and paged.rescans == 1
        assert len(sizes) >= 7 and max(sizes) <= 3
        got = {q: ranked(paged, q) for q in ("tea", "friday", "coffee")}
        got["scoped"] = ranked(paged, "tea", user_id="u1")
        assert got == expected


def test_a_write_between_pages_of_a_rescan_is_found_by_the_next_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        ids = fill(r)
        pages = r.pages
        written: list[str] = []

        def racing(size: int = 1000) -> Iterator[Sequence[Any]]:
            for page in pages(size):
                yield page
                if not written:  # after the first page: a write and a delete race it
                    written.append(r.add("a heron stands in the shallow river"))
                    r.delete(ids[19])
                    r.delete(ids[0])

        monkeypatch.setattr(r, "pages", racing)
        monkeypatch.setattr(index_module, "RESCAN_PAGE", 4)
        index = SemanticIndex(r, HashingEmbedder())
        hits = index.search("heron shallow river", k=30)
        assert hits[0].id == written[0]
        found = {h.id for h in hits}
        assert ids[19] not in found and ids[0] not in found
        assert len(index) == 18

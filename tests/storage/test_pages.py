"""``Replica.pages``: every live memory once, a bounded page at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import Replica

KEY = bytes(range(32))


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_pages_hold_every_live_memory_once_and_at_most_size_each(
        tmp_path: Path, key: bytes | None, size: int) -> None:
    with Replica.open(tmp_path / "r", durable=False, at_rest_key=key) as r:
        ids = [r.add(f"memory {i}", user_id=f"u{i % 3}") for i in range(20)]
        r.set_add("tags", "not a memory")
        r.delete(ids[4])
        r.forget(ids[5])
        pages = list(r.pages(size))
        assert all(1 <= len(page) <= size for page in pages)
        got = [record.id for page in pages for record in page]
        assert sorted(got) == sorted(m.id for m in r.list())
        assert len(got) == len(set(got)) == 18


def test_pages_of_an_empty_replica_are_none(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        assert list(r.pages(5)) == []


def test_a_bad_page_size_is_refused(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        for size in (0, -1, 1.5, True):
            with pytest.raises(InvalidArgumentError):
                list(r.pages(size))  # type: ignore[arg-type]


def test_each_page_reads_afresh_and_resumes_after_the_last_key(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        ids = [r.add(f"memory {i}") for i in range(10)]
        pages = r.pages(3)
        first = [m.id for m in next(pages)]
        later = next(i for i in ids if i not in first)
        r.delete(later)  # after the first page's transaction: the next pages see it gone
        rest = [m.id for page in pages for m in page]
        assert later not in rest
        assert sorted(first + rest) == sorted(i for i in ids if i != later)

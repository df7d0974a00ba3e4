"""Search's journal check: a query with nothing committed since the index last caught
up opens no read transaction, and a commit by anyone (this replica, another process,
encrypted or not) is still seen by the next search."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
_ADD = ("import sys; from memmesh.storage import Replica\n"
        "key = bytes(range(32)) if sys.argv[2] == 'encrypted' else None\n"
        "with Replica.open(sys.argv[1], at_rest_key=key) as r:\n"
        "    print(r.add('a heron stands in the shallow river', user_id='u1'))")


def count_reads(replica: Replica, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the read transactions ``replica`` opens from now on."""
    env = replica._env
    opened = [0]
    read = env.read

    def counting() -> AbstractContextManager[Any]:
        opened[0] += 1
        entered: AbstractContextManager[Any] = read()
        return entered

    monkeypatch.setattr(env, "read", counting)
    return opened


def test_a_search_with_nothing_committed_since_the_last_opens_no_read_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        for i in range(20):
            r.add(f"memory number {i} about tea", user_id="u1")
        index = SemanticIndex(r, HashingEmbedder())
        first = index.search("tea", k=5)
        index.refresh()  # past the index's own commits (its embedding cache's aux rows)
        opened = count_reads(r, monkeypatch)
        assert [h.id for h in index.search("tea", k=5)] == [h.id for h in first]
        assert [h.id for h in index.search_vector(index.embed_query("tea"), k=5)] \
            == [h.id for h in first]
        assert opened[0] == 0
        added = r.add("tea tea tea", user_id="u1")
        assert index.search("tea tea tea", k=1)[0].id == added
        assert opened[0] > 0


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)


def test_a_write_of_another_process_is_found_by_the_next_search(
        tmp_path: Path, mode: str) -> None:
    path = tmp_path / "r"
    key = KEY if mode == "encrypted" else None
    with Replica.open(path, at_rest_key=key) as r:
        r.add("the user drinks green tea", user_id="u1")
        index = SemanticIndex(r, HashingEmbedder())
        assert [h.text for h in index.search("heron river", k=5)] \
            == ["the user drinks green tea"]
        out = subprocess.run([sys.executable, "-c", _ADD, str(path), mode], check=True,
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        hits = index.search("heron river", k=5)
        assert hits[0].id == out.stdout.strip()
        assert hits[0].text == "a heron stands in the shallow river"

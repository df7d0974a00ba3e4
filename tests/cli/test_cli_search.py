"""``memmesh search``: threshold, metadata filter, hits without similarity never fill k,
and a running node serving search over its data directory's socket (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import memmesh, start_node, wait_until


def fill(data: Path) -> None:
    for text, meta in (("alice drinks green tea", "source=chat"),
                       ("alice drinks black tea", "source=email"),
                       ("the build server is down", "source=chat")):
        assert memmesh("add", text, "--metadata", meta, "--data", str(data)).returncode == 0


def hits(data: Path, *argv: str) -> list[dict]:
    done = memmesh("search", *argv, "--embedder", "hashing", "--json", "--data", str(data))
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_hits_without_similarity_never_fill_k(tmp_path: Path) -> None:
    fill(tmp_path / "r")
    texts = [h["text"] for h in hits(tmp_path / "r", "green tea", "-k", "3", "--local")]
    assert "the build server is down" not in texts and texts[0] == "alice drinks green tea"


def test_threshold_and_filter_drop_hits_before_k(tmp_path: Path) -> None:
    data = tmp_path / "r"
    fill(data)
    found = hits(data, "tea", "-k", "1", "--filter", "source=email", "--local")
    assert [h["text"] for h in found] == ["alice drinks black tea"]
    every = hits(data, "green tea", "-k", "3", "--local")
    high = max(h["similarity"] for h in every)
    strict = hits(data, "green tea", "--threshold", str(high - 1e-6), "--local")
    assert [h["text"] for h in strict] == ["alice drinks green tea"]


def test_search_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    fill(tmp_path / "r")
    done = memmesh("search", "tea", "-k", "0", "--data", str(tmp_path / "r"))
    assert done.returncode == 1 and done.stderr == "memmesh: -k must be in 1..100\n"
    done = memmesh("search", "tea", "--filter", "x", "--data", str(tmp_path / "r"))
    assert done.returncode == 1 and "--filter 'x' is not KEY=VALUE" in done.stderr


@pytest.mark.slow
def test_a_running_node_serves_search_over_its_socket(tmp_path: Path) -> None:
    data = tmp_path / "r"
    fill(data)
    node, _ = start_node(data)
    try:
        wait_until(lambda: (data / "search.sock").exists(), 60, "the search socket")
        served = [h["record"]["id"] for h in hits(data, "green tea", "-k", "2")]
        assert served == [h["record"]["id"] for h in hits(data, "green tea", "-k", "2",
                                                          "--local")]
        assert memmesh("add", "bob drinks green tea", "--data", str(data)).returncode == 0
        assert "bob drinks green tea" in [h["text"] for h in hits(data, "green tea")]
    finally:
        node.terminate()
        node.wait(30)
    assert not (data / "search.sock").exists()

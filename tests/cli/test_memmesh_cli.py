"""The ``memmesh`` command line: storage commands on a data directory, and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memmesh._cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_get_list_history_round_trip_on_a_data_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "replica")
    code, out, _ = run(capsys, "add", "Alice prefers tea", "--data", data, "--user-id", "alice",
                       "--actor", "planner")
    assert code == 0
    memory_id = out.strip()
    code, out, _ = run(capsys, "get", memory_id, "--data", data)
    record = json.loads(out)
    assert code == 0 and record["user_id"] == "alice"
    assert [v["text"] for v in record["versions"]] == ["Alice prefers tea"]
    code, out, _ = run(capsys, "list", "--data", data, "--user-id", "alice")
    assert code == 0 and memory_id in out and "Alice prefers tea" in out
    code, out, _ = run(capsys, "list", "--data", data, "--user-id", "bob")
    assert code == 0 and out == ""
    code, out, _ = run(capsys, "history", memory_id, "--data", data)
    assert code == 0 and "ADD" in out and "actor=planner" in out


def test_unknown_memory_and_bad_input_are_errors_not_crashes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "replica")
    code, _, err = run(capsys, "get", "0" * 32, "--data", data)
    assert code == 1 and "no memmesh replica" in err
    code, _, err = run(capsys, "add", "x", "--data", data, "--confidence", "7")
    assert code == 2 and "memmesh:" in err


def test_status_without_a_running_node_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--data", str(tmp_path))
    assert code == 1 and "no node" in err


def test_node_refuses_to_start_without_a_cluster_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMMESH_CLUSTER_KEY", raising=False)
    code, _, err = run(capsys, "node", "--data", str(tmp_path), "--no-mdns")
    assert code == 2 and "cluster key is required" in err


def test_keygen_prints_a_fresh_256_bit_hex_key(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run(capsys, "keygen")
    _, second, _ = run(capsys, "keygen")
    assert len(bytes.fromhex(first.strip())) == 32 and first != second


@pytest.mark.model
def test_demo_converges_three_agents_and_resolves_both_conflicts_once() -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "memmesh", "demo"], capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "converged in" in out and out.count("conflicted=True") == 2
    assert "runs on its own credential" in out and "TLS 1.3 on member credentials" in out
    assert "resolved by near-duplicate" in out and "resolved by role-priority" in out
    assert out.count("(1 RESOLVE event(s)") == 2
    assert "'The public API is REST over HTTPS, versioned under /v2'" in out
    # the reviewer's private run-scoped note stayed on the reviewer
    assert out.count("private note visible=no") == 2

"""The whole memory API from the command line (issue 13): update, delete, forget,
conflicts, resolve, export/import, backup/restore, ``--json``, stdin, metadata, texts cut
to the terminal, and a CLI fleet that resolves its own conflicts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from cli_helpers import MEMMESH, memmesh, start_node, wait_until
from replica_helpers import sync

from memmesh.storage import Replica

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def add(data: Path, *argv: str, stdin: str | None = None) -> str:
    done = memmesh("add", *argv, "--data", str(data), stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def get(data: Path, memory_id: str) -> dict:
    done = memmesh("get", memory_id, "--data", str(data))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def conflicted(tmp_path: Path) -> tuple[Path, Path, str]:
    """Replicas a and b holding one memory that each updated concurrently."""
    with Replica.open(tmp_path / "a") as a, Replica.open(tmp_path / "b") as b:
        memory_id = a.add("release on monday", role="worker")
        sync(a, b)
        a.update(memory_id, "release on tuesday", actor="lead-agent", role="lead")
        b.update(memory_id, "release on friday", actor="worker-agent", role="worker")
        sync(a, b)
        assert a.get(memory_id).conflicted  # type: ignore[union-attr]
    return tmp_path / "a", tmp_path / "b", memory_id


def test_version_prints_the_installed_version() -> None:
    done = memmesh("--version")
    assert done.returncode == 0 and re.match(r"memmesh \d+\.\d+", done.stdout)


def test_add_reads_stdin_and_metadata_and_update_keeps_the_role(tmp_path: Path) -> None:
    data = tmp_path / "r"
    memory_id = add(data, "-", "--role", "lead", "--metadata", "source=chat",
                    "--metadata", "lang=en", "--confidence", "0.8",
                    stdin="Alice prefers tea\n")
    record = get(data, memory_id)
    (version,) = record["versions"]
    assert version["text"] == "Alice prefers tea" and version["role"] == "lead"
    assert version["metadata"] == {"source": "chat", "lang": "en"}
    assert memmesh("update", memory_id, "Alice prefers green tea", "--data",
                   str(data)).returncode == 0
    (version,) = get(data, memory_id)["versions"]
    assert (version["text"], version["role"], version["confidence"]) == \
        ("Alice prefers green tea", "lead", 0.8)
    assert memmesh("update", memory_id, "x", "--role", "worker", "--data",
                   str(data)).returncode == 0
    assert get(data, memory_id)["versions"][0]["role"] == "worker"


def test_json_output_has_iso_times_and_no_python_reprs(tmp_path: Path) -> None:
    data = tmp_path / "r"
    memory_id = add(data, "one fact", "--user-id", "alice")
    record = get(data, memory_id)
    assert ISO.match(record["created_at"]) and ISO.match(record["versions"][0]["timestamp"])
    listed = json.loads(memmesh("list", "--json", "--data", str(data)).stdout)
    assert [r["id"] for r in listed] == [memory_id]
    events = json.loads(memmesh("history", memory_id, "--json", "--data", str(data)).stdout)
    assert [e["op"] for e in events] == ["ADD"] and ISO.match(events[0]["timestamp"])
    for command in (["get", memory_id], ["list", "--json"], ["history", memory_id, "--json"]):
        assert "Timestamp(" not in memmesh(*command, "--data", str(data)).stdout


def test_list_cuts_texts_to_the_terminal_width_unless_full(tmp_path: Path) -> None:
    data = tmp_path / "r"
    add(data, "word " * 100)
    cut = memmesh("list", "--data", str(data), columns=60).stdout
    assert len(cut.rstrip("\n")) <= 60 and cut.rstrip().endswith("…")
    full = memmesh("list", "--full", "--data", str(data), columns=60).stdout
    assert full.count("word") == 100


def test_delete_and_forget_and_their_history(tmp_path: Path) -> None:
    data = tmp_path / "r"
    kept, erased = add(data, "to delete"), add(data, "to forget")
    assert memmesh("delete", kept, "--actor", "ops", "--role", "admin", "--data",
                   str(data)).returncode == 0
    assert memmesh("get", kept, "--data", str(data)).returncode == 1
    events = json.loads(memmesh("history", kept, "--json", "--data", str(data)).stdout)
    assert [(e["op"], e["actor"], e["role"]) for e in events][-1] == \
        ("DELETE", "ops", "admin")
    assert [e["op"] for e in events] == ["ADD", "DELETE"]
    assert memmesh("forget", erased, "--actor", "ops", "--role", "admin", "--data",
                   str(data)).returncode == 0
    assert memmesh("list", "--data", str(data)).stdout == ""
    events = json.loads(memmesh("history", erased, "--json", "--data", str(data)).stdout)
    assert [(e["op"], e["actor"], e["role"]) for e in events] == [("FORGET", "ops", "admin")]


def test_importance_is_set_on_add_and_kept_or_changed_by_update(tmp_path: Path) -> None:
    data = tmp_path / "r"
    memory_id = add(data, "the deploy key rotates monthly", "--importance", "0.9")
    assert get(data, memory_id)["versions"][0]["importance"] == 0.9
    assert memmesh("update", memory_id, "weekly", "--data", str(data)).returncode == 0
    assert get(data, memory_id)["versions"][0]["importance"] == 0.9
    assert memmesh("update", memory_id, "daily", "--importance", "0.2", "--data",
                   str(data)).returncode == 0
    assert get(data, memory_id)["versions"][0]["importance"] == 0.2
    refused = memmesh("update", memory_id, "hourly", "--importance", "2", "--data", str(data))
    assert refused.returncode != 0 and "importance" in refused.stderr
    assert get(data, memory_id)["versions"][0]["text"] == "daily"


def test_conflicts_list_every_version_and_resolve_picks_by_index(tmp_path: Path) -> None:
    a, _, memory_id = conflicted(tmp_path)
    shown = memmesh("conflicts", "--data", str(a)).stdout
    assert memory_id in shown and "[1]" in shown and "[2]" in shown
    assert "release on tuesday" in shown and "release on friday" in shown
    (record,) = json.loads(memmesh("conflicts", "--json", "--data", str(a)).stdout)
    index = 1 + [v["text"] for v in record["versions"]].index("release on friday")
    done = memmesh("resolve", memory_id, "--pick", str(index), "--data", str(a))
    assert done.returncode == 0, done.stderr
    assert get(a, memory_id)["text"] == "release on friday"
    assert memmesh("conflicts", "--json", "--data", str(a)).stdout.strip() == "[]"


def test_resolve_by_merged_text_and_by_named_resolver(tmp_path: Path) -> None:
    a, b, memory_id = conflicted(tmp_path)
    done = memmesh("resolve", memory_id, "--text", "-", "--data", str(a),
                   stdin="release on tuesday or friday\n")
    assert done.returncode == 0, done.stderr
    assert get(a, memory_id)["text"] == "release on tuesday or friday"
    done = memmesh("resolve", memory_id, "--resolver", "role-priority", "--roles",
                   "lead,worker", "--data", str(b))
    assert done.returncode == 0, done.stderr
    record = get(b, memory_id)
    assert record["text"] == "release on tuesday"
    assert record["versions"][0]["op"] == "RESOLVE"


def test_resolve_mistakes_are_one_line_errors_that_change_nothing(tmp_path: Path) -> None:
    a, _, memory_id = conflicted(tmp_path)
    done = memmesh("resolve", memory_id, "--pick", "9", "--data", str(a))
    assert done.returncode == 1 and "has no version '9'" in done.stderr
    done = memmesh("resolve", memory_id, "--resolver", "role-priority", "--data", str(a))
    assert done.returncode != 0 and "needs --roles" in done.stderr
    done = memmesh("resolve", memory_id, "--resolver", "magic", "--data", str(a))
    assert done.returncode != 0 and "unknown resolver 'magic'" in done.stderr
    assert get(a, memory_id)["conflicted"] is True


def test_export_then_import_keeps_scope_versions_and_metadata(tmp_path: Path) -> None:
    source, target = tmp_path / "s", tmp_path / "t"
    add(source, "likes tea", "--user-id", "alice", "--metadata", "k=v", "--role", "lead")
    add(source, "likes rain", "--user-id", "bob", "--agent-id", "a1")
    exported = tmp_path / "out.jsonl"
    assert memmesh("export", "--out", str(exported), "--data", str(source)).returncode == 0
    assert len(exported.read_text().splitlines()) == 2
    done = memmesh("import", str(exported), "--data", str(target))
    assert done.returncode == 0, done.stderr
    got = {r["text"]: r for r in json.loads(memmesh("list", "--json", "--data",
                                                     str(target)).stdout)}
    assert got["likes tea"]["user_id"] == "alice"
    assert got["likes tea"]["versions"][0]["metadata"] == {"k": "v"}
    assert got["likes tea"]["versions"][0]["role"] == "lead"
    assert (got["likes rain"]["user_id"], got["likes rain"]["agent_id"]) == ("bob", "a1")


def test_import_reads_mem0s_get_all_shape(tmp_path: Path) -> None:
    mem0 = {"results": [
        {"id": "m-1", "memory": "Dev works at TechCorp", "user_id": "dev",
         "metadata": {"type": "professional"}, "categories": ["work"],
         "created_at": "2025-01-01T00:00:00Z", "hash": "abc"},
        {"id": "m-2", "memory": "Arjun prefers mornings", "user_id": "arjun",
         "agent_id": None, "metadata": None}]}
    done = memmesh("import", "-", "--format", "mem0", "--data", str(tmp_path / "r"),
                   stdin=json.dumps(mem0))
    assert done.returncode == 0, done.stderr
    got = {r["text"]: r for r in json.loads(memmesh("list", "--json", "--data",
                                                     str(tmp_path / "r")).stdout)}
    dev = got["Dev works at TechCorp"]
    assert dev["user_id"] == "dev"
    assert dev["versions"][0]["metadata"] == {"type": "professional", "mem0_id": "m-1",
                                              "categories": ["work"]}
    assert got["Arjun prefers mornings"]["user_id"] == "arjun"


def test_backup_then_restore_gives_the_memories_under_a_new_incarnation(
        tmp_path: Path) -> None:
    data, backup, restored = tmp_path / "r", tmp_path / "backup", tmp_path / "restored"
    memory_id = add(data, "keep me")
    origin = get(data, memory_id)["versions"][0]["version_id"].rsplit(":", 1)[0]
    assert memmesh("backup", str(backup), "--data", str(data)).returncode == 0
    assert memmesh("backup", str(backup), "--data", str(data)).returncode == 1  # not empty
    assert memmesh("restore", str(backup), "--data", str(restored)).returncode == 0
    assert get(restored, memory_id)["text"] == "keep me"
    assert memmesh("update", memory_id, "changed", "--data", str(restored)).returncode == 0
    new_origin = get(restored, memory_id)["versions"][0]["version_id"].rsplit(":", 1)[0]
    assert new_origin.split("#")[0] == origin.split("#")[0] and new_origin != origin
    done = memmesh("restore", str(backup), "--data", str(restored))
    assert done.returncode == 1 and "--force" in done.stderr
    assert get(restored, memory_id)["text"] == "changed"


@pytest.mark.slow
def test_two_cli_nodes_resolve_their_conflict_with_the_node_resolver(tmp_path: Path) -> None:
    a, b, memory_id = conflicted(tmp_path)
    node_a, port = start_node(a, "--resolver", "role-priority,lww", "--roles", "lead,worker")
    try:
        node_b, _ = start_node(b, "--seed", f"127.0.0.1:{port}", "--resolver",
                               "role-priority,lww", "--roles", "lead,worker")
        try:
            for data in (a, b):
                wait_until(lambda d=data: not get(d, memory_id)["conflicted"], 60,
                           f"the conflict resolved on {data.name}")
                assert get(data, memory_id)["text"] == "release on tuesday"
        finally:
            node_b.terminate()
            node_b.wait(30)
    finally:
        node_a.terminate()
        node_a.wait(30)


def test_a_pipe_closed_early_is_quiet(tmp_path: Path) -> None:
    data = tmp_path / "r"
    lines = "".join(json.dumps({"versions": [{"text": f"memory {i} " + "x" * 400}]}) + "\n"
                    for i in range(400))
    assert memmesh("import", "-", "--data", str(data), stdin=lines).returncode == 0
    proc = subprocess.Popen([MEMMESH, "list", "--full", "--data", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) != 0 and err == ""

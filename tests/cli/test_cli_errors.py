"""Mistakes an operator makes get one line naming the problem and the fix, a non-zero
exit, and change nothing (issue 13)."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import memmesh


def test_read_commands_never_create_a_replica(tmp_path: Path) -> None:
    typo = tmp_path / "memmesh-dtaa"
    for argv in (["list"], ["get", "0" * 32], ["history", "0" * 32], ["conflicts"],
                 ["export"], ["search", "tea", "--embedder", "hashing"],
                 ["update", "0" * 32, "x"], ["delete", "0" * 32], ["forget", "0" * 32]):
        done = memmesh(*argv, "--data", str(typo))
        assert done.returncode == 1, argv
        assert done.stderr == (f"memmesh: no memmesh replica at {typo}; create one with "
                               "memmesh node or memmesh add\n"), argv
    assert not typo.exists()


def test_data_pointing_at_a_file_or_an_unwritable_place(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    for argv in (["add", "x"], ["list"]):
        done = memmesh(*argv, "--data", str(a_file))
        assert done.returncode == 1 and done.stderr == (
            f"memmesh: --data {a_file} is a file, not a directory; point --data at a "
            "replica directory\n")
    done = memmesh("add", "x", "--data", "/proc/x")
    assert done.returncode == 1 and done.stderr.startswith(
        "memmesh: cannot create a replica at /proc/x: ")
    assert done.stderr.endswith("point --data at a writable directory\n")
    assert "Traceback" not in done.stderr
    assert a_file.read_text() == "hello"


def test_get_and_history_of_an_unknown_id_fail(tmp_path: Path) -> None:
    data = tmp_path / "r"
    assert memmesh("add", "x", "--data", str(data)).returncode == 0
    for command in ("get", "history", "update", "delete", "forget"):
        argv = [command, "f" * 32] + (["y"] if command == "update" else [])
        done = memmesh(*argv, "--data", str(data))
        assert done.returncode == 1, command
        assert done.stderr == (f"memmesh: no memory {'f' * 32} in {data}; list the ids "
                               "with memmesh list\n"), command


def test_bad_metadata_is_refused(tmp_path: Path) -> None:
    done = memmesh("add", "x", "--metadata", "novalue", "--data", str(tmp_path / "r"))
    assert done.returncode == 1 and "--metadata 'novalue' is not KEY=VALUE" in done.stderr

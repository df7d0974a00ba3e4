"""The commit probe: ``last_commit`` moves with every commit to the directory, by any
object or process, and a follower whose source did not move reads no journal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from memmesh.storage import JournalFollower, Replica

ROOT = Path(__file__).resolve().parents[2]
_ADD = ("import sys; from memmesh.storage import Replica\n"
        "with Replica.open(sys.argv[1]) as r: print(r.add('from afar'))")


class Counting:
    """Counts the journal reads a follower makes of ``replica``."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.reads = 0

    def journal_seq(self) -> int:
        self.reads += 1
        return int(self.replica.journal_seq())

    def changes_since(self, seq: int, limit: int = 1000) -> Any:
        self.reads += 1
        return self.replica.changes_since(seq, limit)

    def last_commit(self) -> Any:
        return self.replica.last_commit()

    def read_commit(self) -> Any:
        return self.replica.read_commit()


def follow(follower: JournalFollower) -> list[str]:
    seen: list[str] = []
    follower.catch_up(seen.extend, lambda: seen.append("<rebuild>"))
    return seen


def test_a_caught_up_follower_reads_no_journal_until_something_commits(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        first = r.add("one")
        source = Counting(r)
        follower = JournalFollower(source)
        assert follow(follower) == ["<rebuild>"]
        before = source.reads
        assert follow(follower) == [] and source.reads == before
        second = r.add("two")
        assert follow(follower) == [second] and source.reads > before
        assert first != second


def test_commits_of_another_object_on_the_directory_are_seen_after_a_park(
        tmp_path: Path) -> None:
    # py-lmdb opens a directory once per process: a second object can only write it while
    # the first is parked (the simulator's many replicas), and the first must see that
    path = tmp_path / "r"
    with Replica.open(path, durable=False) as r:
        follower = JournalFollower(r)
        follow(follower)
        mark = r.last_commit()
        assert mark is not None and r.read_commit() == mark
        r._env.park()
        with Replica.open(path, durable=False) as other:
            added = other.add("written through the other object")
        assert follow(follower) == [added]
        assert r.last_commit() != mark


def test_the_mark_moves_with_commits_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "r"
    with Replica.open(path) as r:
        follower = JournalFollower(r)
        follow(follower)
        out = subprocess.run([sys.executable, "-c", _ADD, str(path)], check=True,
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert follow(follower) == [out.stdout.strip()]


def test_inside_a_batch_the_probe_defers_to_the_journal(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        follower = JournalFollower(r)
        follow(follower)
        with r.batch():
            added = r.add("uncommitted yet, visible to reads in the batch")
            assert r.last_commit() is None and r.read_commit() is None
            assert follow(follower) == [added]
        assert follow(follower) == []


def test_a_reopened_environment_never_matches_an_older_mark(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        r.add("one")
        mark = r.read_commit()
        r._env.park()
        assert r.last_commit() is None  # parked: cannot tell without reopening
        assert r.read_commit() != mark  # reopened: a new generation

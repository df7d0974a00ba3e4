"""The map trimmer (storage/_rss.py): LMDB pages leave the resident set, reads stay right."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from memmesh.storage import Replica

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="trimming needs /proc/self/maps and madvise")


def _fill(replica: Replica, n: int, size: int = 400) -> dict[str, str]:
    texts = {}
    with replica.batch():
        for i in range(n):
            text = f"memory {i} " + "x" * size
            texts[replica.add(text, user_id=f"u{i % 3}")] = text
    return texts


def _mapped_kb(data_path: Path) -> int:
    """Resident kB of this process's mappings of ``data_path`` (from /proc/self/smaps)."""
    ino = os.stat(data_path).st_ino
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and fields[4].isdigit():
                inside = int(fields[4]) == ino
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def test_reads_stay_correct_across_frequent_trims(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as replica:
        texts = _fill(replica, 600)
        trimmer = replica._env._trimmer
        trimmer.every = 7
        for memory_id, text in texts.items():
            record = replica.get(memory_id)
            assert record is not None and record.text == text
        listed = [r for u in range(3) for r in replica.list(user_id=f"u{u}")]
        assert {r.id: r.text for r in listed} == texts
        assert trimmer.trims > 0 or not sys.platform.startswith("linux")


@linux_only
def test_trim_drops_the_maps_pages_from_the_resident_set(tmp_path: Path) -> None:
    data = tmp_path / "r" / "data.mdb"
    with Replica.open(tmp_path / "r", durable=False) as replica:
        texts = _fill(replica, 3000)
        trimmer = replica._env._trimmer
        trimmer.every = 10**9  # only explicit trims
        for memory_id in texts:
            assert replica.get(memory_id) is not None
        before = _mapped_kb(data)
        trimmer.trim()
        after = _mapped_kb(data)
        assert before > 256 and after < before // 4
        assert [replica.get(m).text for m in texts] == list(texts.values())  # type: ignore[union-attr]


@linux_only
def test_periodic_trims_bound_the_mapping_while_reading_everything(tmp_path: Path) -> None:
    data = tmp_path / "r" / "data.mdb"
    with Replica.open(tmp_path / "r", durable=False) as replica:
        texts = _fill(replica, 5000, size=1000)
        trimmer = replica._env._trimmer
        trimmer.every = 10**9
        trimmer.trim()  # ``grown`` measures the reads below alone
        for memory_id in texts:
            assert replica.get(memory_id) is not None
        grown = _mapped_kb(data)
        trimmer.trim()
        trimmer.every = 20
        bounded = 0
        for i, memory_id in enumerate(texts):
            assert replica.get(memory_id) is not None
            if i % 37 == 36:  # sampled at every phase of the trim period
                bounded = max(bounded, _mapped_kb(data))
        # at most 20 reads since the last trim, each faulting a leaf page and branch pages
        # of the B-tree, each fault mapping up to 64 KiB around it
        assert 0 < bounded <= 20 * 3 * 64 < grown


@linux_only
def test_the_trimmer_follows_the_map_when_it_grows(tmp_path: Path) -> None:
    data = tmp_path / "r" / "data.mdb"
    with Replica.open(tmp_path / "r", durable=False, map_size=1 << 20) as replica:
        texts = _fill(replica, 3000)  # several MiB: the map doubles a few times
        trimmer = replica._env._trimmer
        assert replica._env.map_size > 1 << 20
        trimmer.every = 10**9  # only the explicit trim below
        for memory_id in texts:
            assert replica.get(memory_id) is not None
        before = _mapped_kb(data)
        trimmer.trim()
        assert before > 256 and _mapped_kb(data) < before // 4


@linux_only
def test_environments_opened_untracked_learn_no_range_and_read_the_same(
        tmp_path: Path) -> None:
    from memmesh.storage import _rss

    with _rss.untracked():
        replica = Replica.open(tmp_path / "r", durable=False)
    with replica:
        assert replica._env._trimmer._ranges == []
        texts = _fill(replica, 50)
        replica._env._trimmer.trim()
        assert {m: replica.get(m).text for m in texts} == texts  # type: ignore[union-attr]
    with Replica.open(tmp_path / "r2", durable=False) as tracked:
        assert tracked._env._trimmer._ranges != []

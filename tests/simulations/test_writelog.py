"""Read staleness: how long ago the oldest acknowledged write a read misses was made."""

from __future__ import annotations

from dataclasses import dataclass

from memmesh.crdt import Dot, Timestamp
from memmesh.simulations.writelog import MemoryInfo, Write, WriteLog


@dataclass(frozen=True)
class _V:
    dot: Dot
    timestamp: Timestamp


@dataclass(frozen=True)
class _Record:
    versions: tuple[_V, ...]


def _log() -> WriteLog:
    log = WriteLog()
    log.created(MemoryInfo("m", "a", None, None, "shared", "mv", "k"))
    for n, (wall, ack) in enumerate([(100, 1_000), (200, 2_000), (300, 3_000)], start=1):
        log.acknowledged(Write("m", "a", Dot("a", n), Timestamp(wall, 0, "a"), ack, "k", "UPDATE"))
    return log


def _seen(n: int, wall: int) -> _Record:
    return _Record((_V(Dot("a", n), Timestamp(wall, 0, "a")),))


def test_a_read_of_the_newest_write_is_fresh() -> None:
    assert _log().staleness_us("m", _seen(3, 300), 5_000) == 0


def test_a_read_missing_writes_is_as_stale_as_the_oldest_missed_write() -> None:
    assert _log().staleness_us("m", _seen(1, 100), 5_000) == 5_000 - 2_000


def test_writes_acknowledged_after_the_read_do_not_count() -> None:
    assert _log().staleness_us("m", _seen(1, 100), 1_500) == 0


def test_a_read_that_finds_nothing_misses_everything_acknowledged() -> None:
    assert _log().staleness_us("m", None, 5_000) == 5_000 - 1_000


def test_an_lww_loser_with_an_older_timestamp_is_not_missing() -> None:
    log = _log()
    log.acknowledged(Write("m", "b", Dot("b", 1), Timestamp(50, 0, "b"), 4_000, "k", "UPDATE"))
    assert log.staleness_us("m", _seen(3, 300), 5_000) == 0

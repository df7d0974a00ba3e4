"""Clocks (issue 11, cases 6 and 8; deliverable 7, storage side): no peer can exhaust or
freeze a replica's hybrid clock, and a replica whose clock ran ahead recovers at open."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from storage_helpers import START_MS, sync_once, ticking

from memmesh.crdt import LOGICAL_CEILING, packb, unpackb
from memmesh.storage import Replica
from memmesh.storage._keycodec import encode
from memmesh.storage._keystore import load

YEAR_MS = 365 * 24 * 3600 * 1000


def _stamped(source: Replica, key: str, wall: int, logical: int) -> bytes:
    """``key``'s state from ``source`` with its created and version stamps forged."""
    with source._env.read() as txn:
        _, _, state = load(txn, key)
    assert state is not None
    plain = list(unpackb(encode(state)))  # type: ignore[arg-type]
    header = list(plain[2])
    header[9] = (wall, logical, header[9][2])
    plain[2] = tuple(header)
    plain[5] = tuple((ri, c, (v[0], v[1], v[2], wall, logical, *v[5:])) for ri, c, v in plain[5])
    return packb(tuple(plain))


def _payload(sender: Replica, receiver: Replica, states: list[bytes]) -> bytes:
    """A payload from ``sender`` carrying just ``states`` (and no claims)."""
    plain = dict(unpackb(sender.sync_changes(receiver.sync_summary())))  # type: ignore[arg-type]
    return packb(dict(plain, states=tuple(states), through={}))


def test_a_peer_s_huge_logical_counter_is_refused_and_freezes_nothing(tmp_path: Path) -> None:
    """Case 6: a state 590 s ahead (inside the drift bound) with logical 2**32 - 2 made
    every later add and sync_apply raise ClockDriftError until the wall clock caught up."""
    clock = ticking()
    with Replica.open(tmp_path / "m", replica_id="mallory", clock=clock) as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim, \
            Replica.open(tmp_path / "w", replica_id="other", clock=clock) as other:
        bait = mallory.add("bait")
        forged = _stamped(mallory, bait, clock.now_ms + 590_000, 2**32 - 2)
        result = victim.sync_apply(_payload(mallory, victim, [forged]))
        assert [(r.key, r.reason) for r in result.refused] == [(bait, "clock-logical")]
        mine = victim.add("still writing")
        other.add("and still syncing")
        sync_once(other, victim)
        sync_once(victim, other)
        assert other.get(mine) is not None and victim.state_digest() == other.state_digest()


def test_a_logical_part_at_the_ceiling_is_accepted_and_the_clock_moves_on(
        tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "m", replica_id="mallory", clock=clock) as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim:
        bait = mallory.add("bait")
        ahead = clock.now_ms + 590_000
        forged = _stamped(mallory, bait, ahead, LOGICAL_CEILING)
        assert victim.sync_apply(_payload(mallory, victim, [forged])).refused == ()
        mine = victim.add("after it")
        got = victim.get(mine)
        assert got is not None and got.created_at.wall_ms > ahead  # past it, no error


def test_a_replica_whose_clock_ran_ahead_restarts_its_hybrid_clock_at_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Case 8, after the fix of the clock: the persisted hybrid clock kept stamping a
    year ahead, so every new write was refused by every peer."""
    honest_clock = ticking()
    with Replica.open(tmp_path / "f", replica_id="fixed",
                      clock=ticking(START_MS + YEAR_MS)) as broken:
        broken.add("written while the clock was a year ahead")
    peer = Replica.open(tmp_path / "p", replica_id="peer", clock=honest_clock)
    with caplog.at_level(logging.WARNING, logger="memmesh.storage"):
        fixed = Replica.open(tmp_path / "f", clock=honest_clock)
    assert any("ahead of the wall clock" in r.getMessage() for r in caplog.records)
    with fixed:
        new = fixed.add("written after the fix")
        got = fixed.get(new)
        assert got is not None and got.created_at.wall_ms < START_MS + YEAR_MS // 2
        result = peer.sync_apply(fixed.sync_changes(peer.sync_summary()))
        assert peer.get(new) is not None
        assert [r.reason for r in result.refused] == ["clock-ahead"]  # the old write waits
    peer.close()


def test_a_clock_ahead_within_the_drift_bound_is_kept_at_open(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking(START_MS + 60_000)) as r:
        first = r.add("a minute ahead")
    with Replica.open(tmp_path / "r", clock=ticking()) as r:
        second = r.add("after reopening")
        a, b = r.get(first), r.get(second)
        assert a is not None and b is not None and b.created_at > a.created_at  # monotonic

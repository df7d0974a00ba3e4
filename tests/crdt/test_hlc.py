"""Hybrid logical clock properties over random event sequences (Kulkarni et al. 2014)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import HLC, LOGICAL_CEILING, ClockDriftError, Timestamp
from memmesh.crdt._limits import MAX_LOGICAL

DRIFT = 1_000
WALLS = st.integers(0, 5_000)
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("now"), WALLS),
        st.tuples(
            st.just("observe"), WALLS, st.builds(Timestamp, WALLS, st.integers(0, 5), st.just("B"))
        ),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(EVENTS)
def test_timestamps_strictly_increase_and_track_the_largest_wall_seen(events: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = HLC("A", max_drift_ms=DRIFT)
    previous: Timestamp | None = None
    largest_wall = 0
    for event in events:
        before = clock.last
        try:
            stamp = clock.now(event[1]) if event[0] == "now" else clock.observe(event[2], event[1])
        except ClockDriftError:
            assert event[0] == "observe" and event[2].wall_ms > event[1] + DRIFT
            assert clock.last == before
            continue
        largest_wall = max(largest_wall, event[1])
        if event[0] == "observe":
            assert stamp > event[2]
            largest_wall = max(largest_wall, event[2].wall_ms)
        assert previous is None or stamp > previous
        assert stamp.replica == "A"
        assert stamp.wall_ms == largest_wall
        previous = stamp
    assert clock.last == previous


@settings(max_examples=100)
@given(WALLS, WALLS)
def test_a_restored_clock_continues_after_its_last_timestamp(first: int, second: int) -> None:
    clock = HLC("A")
    stamp = clock.now(first)
    restored = HLC("A", last=stamp)
    assert restored.now(second) > stamp


CEILING_WALLS = st.integers(0, 3)
NEAR_CEILING = st.integers(LOGICAL_CEILING - 3, MAX_LOGICAL)
HOT_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("now"), CEILING_WALLS),
        st.tuples(st.just("observe"), CEILING_WALLS,
                  st.builds(Timestamp, CEILING_WALLS, NEAR_CEILING, st.just("B"))),
    ),
    min_size=1, max_size=60,
)


@settings(max_examples=200)
@given(st.one_of(st.none(), st.builds(Timestamp, CEILING_WALLS, NEAR_CEILING, st.just("A"))),
       HOT_EVENTS)
def test_logical_overflow_advances_the_wall_part_and_never_raises(
        restored: Timestamp | None, events: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = HLC("A", max_drift_ms=DRIFT, last=restored)
    previous = restored
    for event in events:
        stamp = clock.now(event[1]) if event[0] == "now" else clock.observe(event[2], event[1])
        assert previous is None or stamp > previous
        if event[0] == "observe":
            assert stamp > event[2]
        assert stamp.logical <= LOGICAL_CEILING  # never beyond what peers accept
        previous = stamp


def test_a_clock_at_its_ceiling_moves_to_the_next_millisecond() -> None:
    clock = HLC("A", last=Timestamp(1_000, LOGICAL_CEILING, "A"))
    assert clock.now(1_000) == Timestamp(1_001, 0, "A")
    exhausted = HLC("A", last=Timestamp(1_000, MAX_LOGICAL - 1, "A"))  # issue 11, case 6
    assert exhausted.now(900) == Timestamp(1_001, 0, "A")
    assert HLC("A").observe(Timestamp(5, MAX_LOGICAL, "B"), 5) == Timestamp(6, 0, "A")

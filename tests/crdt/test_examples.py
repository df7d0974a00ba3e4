"""Worked examples of each type's semantics, written out by hand."""

from __future__ import annotations

import pytest

from memmesh.crdt import (
    HLC,
    CausalContext,
    ClockDriftError,
    Dot,
    InvalidArgumentError,
    LWWRegister,
    MVRegister,
    ORSet,
    Timestamp,
    encode,
    join,
)


def test_orset_concurrent_add_and_remove_add_wins() -> None:
    alice: ORSet[str] = ORSet()
    alice.add("milk", "A")
    bob = alice.copy()
    readd = alice.add("milk", "A")  # Alice adds again, concurrently with...
    removal = bob.remove("milk")  # ...Bob removing the add he had seen.
    alice.merge(removal)
    bob.merge(readd)
    assert alice.value == bob.value == frozenset({"milk"})
    assert alice == bob


def test_orset_remove_of_everything_seen_wins_over_older_adds() -> None:
    a: ORSet[str] = ORSet()
    first = a.add("x", "A")
    b: ORSet[str] = ORSet()
    b.merge(first)
    removal = b.remove("x")
    a.merge(removal)
    assert "x" not in a
    assert a.value == b.value == frozenset()


def test_orset_remove_delivered_before_its_add_still_removes() -> None:
    source: ORSet[str] = ORSet()
    add = source.add("x", "A")
    remove = source.remove("x")
    late: ORSet[str] = ORSet()
    late.merge(remove)  # out of causal order
    late.merge(add)
    late.merge(remove)  # and duplicated
    assert late.value == frozenset()
    assert late == source


def test_orset_remove_with_replica_mints_a_dot_only_in_the_context() -> None:
    s: ORSet[str] = ORSet()
    s.add("x", "A")
    delta = s.remove("x", "B")
    assert delta.entries == {}
    assert delta.context == CausalContext.from_dots([Dot("A", 1), Dot("B", 1)])
    assert s.context.vv == {"A": 1, "B": 1}


def test_orset_add_delta_context_holds_exactly_the_dots_it_speaks_for() -> None:
    s: ORSet[str] = ORSet()
    s.add("x", "A")
    s.add("y", "A")
    delta = s.add("x", "A")
    assert delta.entries == {"x": frozenset({Dot("A", 3)})}
    # Dot A:2 (element y) is not claimed, although a compacted vector would claim it.
    assert delta.context == CausalContext.from_dots([Dot("A", 1), Dot("A", 3)])
    assert delta.context.cloud == {Dot("A", 3)}


def test_orset_lists_become_tuples_and_bad_elements_are_refused() -> None:
    s: ORSet[object] = ORSet()
    s.add(["a", 1], "A")
    assert ("a", 1) in s
    for bad in (1.5, True, {"a": 1}, object()):
        with pytest.raises(InvalidArgumentError):
            s.add(bad, "A")
    assert s.value == frozenset({("a", 1)})


def test_mvregister_keeps_concurrent_writes_then_collapses_after_a_dominating_write() -> None:
    a: MVRegister[str] = MVRegister()
    b: MVRegister[str] = MVRegister()
    da = a.write("tea", "A")
    db = b.write("coffee", "B")
    a.merge(db)
    b.merge(da)
    assert a.value == b.value == ("tea", "coffee")  # ordered by dot: A before B
    assert [dot for dot, _ in a.items()] == [Dot("A", 1), Dot("B", 1)]
    resolution = b.write("tea with milk", "B")
    assert resolution.context == CausalContext.from_dots([Dot("A", 1), Dot("B", 1), Dot("B", 2)])
    a.merge(resolution)
    assert a.value == b.value == ("tea with milk",)
    assert a == b


def test_mvregister_clear_removes_only_what_it_saw() -> None:
    a: MVRegister[int] = MVRegister()
    b: MVRegister[int] = MVRegister()
    a.merge(b.write(1, "B"))
    cleared = a.clear("A")
    concurrent = b.write(2, "B")
    a.merge(concurrent)
    b.merge(cleared)
    assert a.value == b.value == (2,)


def test_mvregister_values_compare_with_their_type() -> None:
    a: MVRegister[object] = MVRegister()
    b: MVRegister[object] = MVRegister()
    a.write(1, "A")
    b.write(1.0, "A")
    assert a != b
    assert encode(a) != encode(b)


def test_lww_later_timestamp_wins_in_either_order() -> None:
    early, late = Timestamp(100, 0, "A"), Timestamp(100, 1, "A")
    x: LWWRegister[str] = LWWRegister()
    y: LWWRegister[str] = LWWRegister()
    x.write("old", early)
    x.write("new", late)
    y.write("new", late)
    y.write("old", early)
    assert x.value == y.value == "new"
    assert x == y


def test_lww_equal_wall_and_logical_tie_broken_by_replica_id() -> None:
    from_a = LWWRegister(Timestamp(5, 0, "A"), "from A")
    from_b = LWWRegister(Timestamp(5, 0, "B"), "from B")
    assert join(from_a, from_b).value == join(from_b, from_a).value == "from B"


def test_lww_identical_timestamps_with_different_values_still_join_commutatively() -> None:
    stamp = Timestamp(5, 0, "A")
    left: LWWRegister[str] = LWWRegister(stamp, "aaa")
    right: LWWRegister[str] = LWWRegister(stamp, "zzz")
    assert join(left, right) == join(right, left)
    assert join(left, right).value == "zzz"


def test_lww_value_without_timestamp_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        LWWRegister(None, "x")


def test_hlc_stays_monotonic_when_the_wall_clock_goes_backwards() -> None:
    clock = HLC("A")
    stamps = [clock.now(wall) for wall in (1_000, 900, 900, 1_000, 1_001, 500)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert stamps[1] == Timestamp(1_000, 1, "A")
    assert stamps[4] == Timestamp(1_001, 0, "A")
    assert clock.last == stamps[-1] == Timestamp(1_001, 1, "A")


def test_hlc_observe_orders_after_the_remote_event() -> None:
    clock = HLC("A")
    clock.now(1_000)
    remote = Timestamp(2_000, 7, "B")
    stamp = clock.observe(remote, 1_500)
    assert stamp == Timestamp(2_000, 8, "A")
    assert stamp > remote
    assert clock.now(1_500) == Timestamp(2_000, 9, "A")


def test_hlc_observe_with_equal_walls_takes_the_larger_logical() -> None:
    clock = HLC("A", last=Timestamp(3_000, 4, "A"))
    assert clock.observe(Timestamp(3_000, 2, "B"), 1_000) == Timestamp(3_000, 5, "A")
    assert clock.observe(Timestamp(3_000, 9, "B"), 1_000) == Timestamp(3_000, 10, "A")
    assert clock.observe(Timestamp(1, 50, "B"), 4_000) == Timestamp(4_000, 0, "A")


def test_hlc_refuses_a_remote_timestamp_beyond_the_drift_and_changes_nothing() -> None:
    clock = HLC("A", max_drift_ms=1_000)
    clock.now(10_000)
    before = clock.last
    clock.check(Timestamp(11_000, 0, "B"), 10_000)  # exactly at the bound: fine
    with pytest.raises(ClockDriftError):
        clock.observe(Timestamp(11_001, 0, "B"), 10_000)
    assert clock.last == before
    assert clock.observe(Timestamp(11_000, 0, "B"), 10_000) == Timestamp(11_000, 1, "A")


def test_timestamps_order_totally_with_replica_id_last() -> None:
    stamps = [
        Timestamp(2, 0, "A"),
        Timestamp(1, 5, "B"),
        Timestamp(1, 5, "A"),
        Timestamp(1, 0, "Z"),
    ]
    assert sorted(stamps) == [stamps[3], stamps[2], stamps[1], stamps[0]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Dot("A", 0),
        lambda: Dot("A", True),
        lambda: Dot("", 1),
        lambda: Dot("x" * 129, 1),
        lambda: Timestamp(-1, 0, "A"),
        lambda: Timestamp(0, -1, "A"),
        lambda: HLC("A").now(-5),
        lambda: CausalContext({"A": -1}),
    ],
)
def test_invalid_arguments_raise_memmesh_errors(make: object) -> None:
    with pytest.raises(InvalidArgumentError):
        make()  # type: ignore[operator]


def test_join_of_different_types_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        join(ORSet(), MVRegister())  # type: ignore[type-var]


def test_merge_removes_exactly_the_cloud_dots_a_delta_has_seen() -> None:
    state: ORSet[str] = ORSet(
        {"four": frozenset({Dot("A", 4)}), "five": frozenset({Dot("A", 5)})},
        CausalContext.from_dots([Dot("A", 4), Dot("A", 5)]),
    )
    # A delta that saw A:3 and A:5 (not A:4) and holds neither: it removed "five".
    delta: ORSet[str] = ORSet({}, CausalContext.from_dots([Dot("A", 3), Dot("A", 5)]))
    state.merge(delta)
    assert state.value == frozenset({"four"})
    assert state.context == CausalContext.from_dots([Dot("A", 3), Dot("A", 4), Dot("A", 5)])

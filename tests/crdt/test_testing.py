"""memmesh.crdt.testing: the public strategies and check_convergence catch real bugs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import CausalContext, LWWRegister, MVRegister, ORSet
from memmesh.crdt.testing import (
    ConvergenceFailure,
    Deliver,
    Mutate,
    Operation,
    Schedule,
    Sync,
    add,
    check_convergence,
    clear,
    lww_write,
    operations,
    remove,
    schedules,
    states,
    write,
)

KINDS = [ORSet, MVRegister, LWWRegister]


class CompactedRemoveORSet(ORSet[Any]):
    """A classic delta-CRDT bug: the remove delta ships the whole compacted context,
    claiming to have removed adds it never saw."""

    def remove(self, element: Any, replica: str | None = None) -> ORSet[Any]:
        super().remove(element, replica)
        delta = type(self)()
        delta.context = self.context.copy()
        return delta


class RemoveWinsMergeORSet(ORSet[Any]):
    """A non-commutative join: whichever side is merged in last decides membership."""

    def merge(self, other: ORSet[Any]) -> None:
        self.entries = dict(other.entries)
        self.context.merge(other.context)


class LossyDeltaORSet(ORSet[Any]):
    """A mutator whose delta forgets the new dot: breaks the delta law."""

    def add(self, element: Any, replica: str) -> ORSet[Any]:
        super().add(element, replica)
        return type(self)()


def _copying(state: Any) -> Any:
    return state.copy()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_memmesh_types_converge_under_generated_schedules(kind: type[Any]) -> None:
    @settings(max_examples=60)
    @given(st.lists(operations(kind), max_size=15), schedules())
    def check(ops: list[Operation[Any]], schedule: Schedule) -> None:
        final = check_convergence(kind, ops, schedule)
        assert type(final) is kind

    check()


def test_converged_set_matches_a_hand_computed_outcome() -> None:
    ops = [add("x", 0), add("y", 1), remove("x", 1), add("x", 2)]
    # Replica 1 removes x before seeing any add of x: the removal removes nothing.
    schedule = Schedule((Mutate(), Mutate(), Mutate(), Deliver(0, 2), Mutate()))
    assert check_convergence(ORSet, ops, schedule).value == frozenset({"x", "y"})
    # Once replica 1 has seen replica 0's add, its removal removes exactly that add.
    schedule = Schedule((Mutate(), Mutate(), Deliver(0, 1), Mutate()))
    final = check_convergence(ORSet, ops[:3], schedule)
    assert final.value == frozenset({"y"})


def test_converged_registers_match_hand_computed_outcomes() -> None:
    concurrent = [write("a", 0), write("b", 1)]
    assert check_convergence(MVRegister, concurrent).value == ("a", "b")
    dominated = [write("a", 0), write("b", 1), write("c", 2)]
    schedule = Schedule((Mutate(), Mutate(), Sync(0, 2), Sync(1, 2), Mutate()))
    assert check_convergence(MVRegister, dominated, schedule).value == ("c",)
    assert check_convergence(MVRegister, [*concurrent, clear(2)]).value == ("a", "b")
    lww = [lww_write("late", 0, wall_ms=9), lww_write("early", 1, wall_ms=3)]
    assert check_convergence(LWWRegister, lww).value == "late"


def test_check_convergence_catches_deltas_that_claim_unseen_dots() -> None:
    ops: list[Operation[Any]] = [
        add("x", 0),
        add("y", 1),
        Operation(0, "remove", ("x",), lambda s, r: s.remove("x")),
    ]
    # Replica 0 sees y's add, removes x, and its remove delta claims B:1 too: joined
    # anywhere, it would delete y, which replica 0 itself still holds.
    schedule = Schedule((Mutate(), Mutate(), Deliver(1, 0), Mutate(), Deliver(2, 2)))
    check_convergence(ORSet, ops, schedule)  # the real type is fine
    with pytest.raises(ConvergenceFailure, match="delta law broken by remove"):
        check_convergence(CompactedRemoveORSet, ops, schedule, transport=_copying)


def test_the_generated_search_does_find_the_claiming_bug() -> None:
    found: list[bool] = []

    @settings(max_examples=300, database=None)
    @given(st.lists(operations(ORSet), max_size=12), schedules())
    def search(ops: list[Operation[Any]], schedule: Schedule) -> None:
        check_convergence(CompactedRemoveORSet, ops, schedule, transport=_copying)

    try:
        search()
    except ConvergenceFailure:
        found.append(True)
    assert found, "300 generated schedules never exposed the compacted-context bug"


def test_check_convergence_catches_a_non_commutative_join() -> None:
    ops: list[Operation[Any]] = [add("x", 0), remove("x", 0), add("x", 1)]
    schedule = Schedule((Mutate(), Mutate(), Mutate()), resend_reversed=True)
    with pytest.raises(ConvergenceFailure):
        check_convergence(RemoveWinsMergeORSet, ops, schedule, transport=_copying)


def test_check_convergence_catches_a_broken_delta_law() -> None:
    with pytest.raises(ConvergenceFailure, match="delta law"):
        check_convergence(LossyDeltaORSet, [add("x", 0)], transport=_copying)


def test_custom_operations_and_replica_names() -> None:
    ops: list[Operation[Any]] = [
        Operation(0, "tag", ("urgent",), lambda s, r: s.add("urgent", r)),
        Operation(1, "untag", ("urgent",), lambda s, r: s.remove("urgent", r)),
    ]
    final = check_convergence(ORSet, ops, replicas=("agent-1", "agent-2"))
    assert final.value == frozenset({"urgent"})  # concurrent add wins
    assert final.context.vv == {"agent-1": 1, "agent-2": 1}


@settings(max_examples=30)
@given(states(ORSet), states(MVRegister), states(LWWRegister))
def test_state_strategies_build_the_requested_types(a: Any, b: Any, c: Any) -> None:
    assert isinstance(a, ORSet) and isinstance(b, MVRegister) and isinstance(c, LWWRegister)
    for state in (a, b):
        assert isinstance(state.context, CausalContext)


def test_operations_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        operations(dict)


@given(st.lists(operations(ORSet), max_size=20), schedules())
@settings(max_examples=40)
def test_the_module_docstring_example_holds(ops: list[Operation[Any]], schedule: Schedule) -> None:
    final = check_convergence(ORSet, ops, schedule)
    assert final.value <= {op.args[0] for op in ops if op.name == "add"}

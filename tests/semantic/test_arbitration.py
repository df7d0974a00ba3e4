"""resolve_conflicts: only the elected arbiter resolves; resolutions dominate their inputs."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from replica_helpers import Clock, sync_all
from semantic_helpers import version

from memmesh.merge import (
    DEFAULT_DEADLINE_MS,
    Conflict,
    InvalidResolutionError,
    Resolution,
    arbiter_rank,
    resolve_conflicts,
    takeover_wait,
)
from memmesh.semantic import LastWriterWins, LLMArbiter
from memmesh.storage import MemoryRecord

Opener = Callable[..., Any]


def conflicted_pair(open_replica: Opener, clock: Clock) -> tuple[Any, Any, str]:
    a, b = open_replica("r1"), open_replica("r2")
    memory = a.add("the release is on friday", user_id="u1", actor="planner")
    sync_all([a, b])
    clock.advance(5)
    a.update(memory, "the release is on friday evening", actor="planner")
    b.update(memory, "the release moved to monday", actor="qa")
    sync_all([a, b])
    assert a.get(memory).conflicted and b.get(memory).conflicted
    for replica in (a, b):  # both see the conflict now: takeover waits count from here
        resolve_conflicts(replica, lambda conflict: None)
    return a, b, memory


def by_id(replicas: list[Any]) -> dict[str, Any]:
    return {r.replica_id: r for r in replicas}


def test_only_the_elected_arbiter_resolves_and_the_resolution_dominates(
    open_replica: Opener, clock: Clock
) -> None:
    a, b, memory = conflicted_pair(open_replica, clock)
    elected, other = (by_id([a, b])[r] for r in arbiter_rank(a.get(memory)))
    inputs = {v.dot for v in a.get(memory).versions}
    assert resolve_conflicts(other, LastWriterWins()) == []
    outcomes = resolve_conflicts(elected, LastWriterWins(), actor="arbiter")
    assert [o.memory_id for o in outcomes] == [memory]
    written = outcomes[0].version
    assert written.op == "RESOLVE" and written.resolver == "last-writer-wins"
    assert set(written.inputs) == inputs
    sync_all([a, b])
    for replica in (a, b):
        record = replica.get(memory)
        assert not record.conflicted
        assert record.text == "the release moved to monday"
        assert replica.conflicts() == []
    assert "RESOLVE" in [event.op for event in a.history(memory)]


def test_a_silent_arbiter_is_taken_over_after_the_deadline(
    open_replica: Opener, clock: Clock
) -> None:
    a, b, memory = conflicted_pair(open_replica, clock)
    _, runner_up = (by_id([a, b])[r] for r in arbiter_rank(a.get(memory)))
    assert resolve_conflicts(runner_up, LastWriterWins()) == []
    clock.advance(DEFAULT_DEADLINE_MS)
    assert len(resolve_conflicts(runner_up, LastWriterWins())) == 1
    assert not runner_up.get(memory).conflicted


def test_no_opinion_and_failures_leave_the_conflict_in_place(
    open_replica: Opener, clock: Clock
) -> None:
    a, _, memory = conflicted_pair(open_replica, clock)
    clock.advance(10 * DEFAULT_DEADLINE_MS)  # any replica may act now

    def broken(conflict: Conflict) -> Resolution:
        raise RuntimeError("resolver bug")

    def foreign_pick(conflict: Conflict) -> Resolution:
        return Resolution.pick(version("made up", replica="zz", counter=99))

    def not_a_resolution(conflict: Conflict) -> Any:
        return "pick the first"

    outcome = resolve_conflicts(a, lambda c: None)[0]
    assert outcome.resolution is None and outcome.version is None and outcome.error is None
    assert isinstance(resolve_conflicts(a, broken)[0].error, RuntimeError)
    assert isinstance(resolve_conflicts(a, foreign_pick)[0].error, InvalidResolutionError)
    assert isinstance(resolve_conflicts(a, not_a_resolution)[0].error, InvalidResolutionError)
    assert a.get(memory).conflicted
    assert "RESOLVE" not in [event.op for event in a.history(memory)]


def test_scope_filters_limit_which_conflicts_are_resolved(
    open_replica: Opener, clock: Clock
) -> None:
    a, _, _ = conflicted_pair(open_replica, clock)
    clock.advance(10 * DEFAULT_DEADLINE_MS)
    assert resolve_conflicts(a, LastWriterWins(), user_id="someone-else") == []
    assert len(resolve_conflicts(a, LastWriterWins(), user_id="u1")) == 1


def test_llm_arbiter_merge_is_written_as_a_resolve(open_replica: Opener, clock: Clock) -> None:
    a, _, memory = conflicted_pair(open_replica, clock)
    clock.advance(10 * DEFAULT_DEADLINE_MS)
    prompts: list[str] = []

    async def llm(prompt: str) -> str:
        prompts.append(prompt)
        return '{"decision": "merge", "text": "Release: Friday evening or Monday (unclear)."}'

    outcome = resolve_conflicts(a, LLMArbiter(llm))[0]
    assert outcome.version.resolver == "llm-arbiter"
    assert a.get(memory).text == "Release: Friday evening or Monday (unclear)."
    assert "planner" in prompts[0] and "qa" in prompts[0]


class RandomTextResolver:
    """A maximally non-deterministic resolver: a fresh random text on every call."""

    name = "random-text"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.calls: Counter[str] = Counter()

    def __call__(self, conflict: Conflict) -> Resolution:
        self.calls[conflict.memory_id] += 1
        return Resolution.merged(f"decision #{self.rng.getrandbits(64):x}")


def five_conflicted_replicas(
    open_replica: Opener, clock: Clock, memories: int
) -> tuple[list[Any], list[str]]:
    replicas = [open_replica(f"r{i}") for i in range(5)]
    ids = [replicas[0].add(f"fact {m}", user_id="u1") for m in range(memories)]
    sync_all(replicas)
    clock.advance(5)
    for i, replica in enumerate(replicas):
        for memory in ids:
            replica.update(memory, f"fact {memory[:6]} according to replica {i}", actor=f"a{i}")
    sync_all(replicas)
    assert all(len(r.conflicts()) == memories for r in replicas)
    return replicas, ids


def test_five_replicas_with_a_random_resolver_resolve_each_conflict_once(
    open_replica: Opener, clock: Clock
) -> None:
    replicas, ids = five_conflicted_replicas(open_replica, clock, memories=6)
    resolver = RandomTextResolver(seed=1)
    for replica in replicas:
        resolve_conflicts(replica, resolver)
    sync_all(replicas)
    assert sorted(resolver.calls) == sorted(ids)
    assert set(resolver.calls.values()) == {1}
    for memory in ids:
        texts = {r.get(memory).text for r in replicas}
        assert len(texts) == 1 and next(iter(texts)).startswith("decision #")
    assert all(r.conflicts() == [] for r in replicas)


@pytest.mark.parametrize("silent", [0, 2])
def test_five_replicas_with_silent_arbiters_need_at_most_two_calls_per_conflict(
    open_replica: Opener, clock: Clock, silent: int
) -> None:
    """The first ``silent`` candidates of every conflict never run their resolver; the
    others run every simulated second and gossip fully after each round."""
    replicas, ids = five_conflicted_replicas(open_replica, clock, memories=4)
    silent_for = {m: set(arbiter_rank(replicas[0].get(m))[:silent]) for m in ids}
    resolver = RandomTextResolver(seed=2)

    def resolver_of(replica: Any) -> Callable[[Conflict], Resolution | None]:
        def maybe(conflict: Conflict) -> Resolution | None:
            if replica.replica_id in silent_for[conflict.memory_id]:
                return None  # a down arbiter: never decides
            return resolver(conflict)

        return maybe

    for _ in range(200):
        for replica in replicas:
            resolve_conflicts(replica, resolver_of(replica))
        sync_all(replicas)
        if all(r.conflicts() == [] for r in replicas):
            break
        clock.advance(1_000)
    assert all(r.conflicts() == [] for r in replicas)
    for memory in ids:
        assert len({r.get(memory).text for r in replicas}) == 1
        assert 1 <= resolver.calls[memory] <= 2



def test_takeover_waits_double_with_every_resolution_standing_so_storms_die_out(
    open_replica: Opener, clock: Clock
) -> None:
    a, b, memory = conflicted_pair(open_replica, clock)
    elected, runner_up = (by_id([a, b])[r] for r in arbiter_rank(a.get(memory)))
    clock.advance(DEFAULT_DEADLINE_MS)  # the runner-up takes over before news arrives...
    assert len(resolve_conflicts(elected, LastWriterWins())) == 1
    assert len(resolve_conflicts(runner_up, LastWriterWins())) == 1
    sync_all([a, b])  # ...so two resolutions now conflict
    record = a.get(memory)
    assert record.conflicted and {v.op for v in record.versions} == {"RESOLVE"}
    second = by_id([a, b])[arbiter_rank(record)[1]]
    assert resolve_conflicts(second, LastWriterWins()) == []  # first sighting
    clock.advance(DEFAULT_DEADLINE_MS)
    assert resolve_conflicts(second, LastWriterWins()) == []  # two RESOLVEs: 4x the wait
    clock.advance(3 * DEFAULT_DEADLINE_MS)
    assert len(resolve_conflicts(second, LastWriterWins())) == 1


def test_the_takeover_wait_stops_doubling_so_a_departed_arbiter_is_replaced() -> None:
    """A storm left 14 resolutions standing and the first-ranked writer had left the
    fleet: the runner-up waited 2**14 deadlines (a torture seed never converged)."""
    def record(resolutions: int) -> MemoryRecord:
        versions = [SimpleNamespace(op="RESOLVE") for _ in range(resolutions)]
        return cast(MemoryRecord, SimpleNamespace(versions=[SimpleNamespace(op="ADD"),
                                                            *versions]))

    assert takeover_wait(record(0), DEFAULT_DEADLINE_MS) == DEFAULT_DEADLINE_MS
    assert takeover_wait(record(3), DEFAULT_DEADLINE_MS) == 8 * DEFAULT_DEADLINE_MS
    assert takeover_wait(record(14), DEFAULT_DEADLINE_MS) == 32 * DEFAULT_DEADLINE_MS


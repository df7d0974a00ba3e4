"""Issue 15 in the merge chain: a resolution carries the resolver's actor and role, so
a role-ranked resolver ranks it in a later conflict; the importance threshold sends
only important conflicts on to the expensive resolver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from manual_clock import Clock

from memmesh.crdt import InvalidArgumentError
from memmesh.merge import Conflict, Resolution, resolve_conflicts
from memmesh.semantic import RolePriority
from memmesh.storage import Replica


def _sync(a: Replica, b: Replica) -> None:
    for src, dst in ((a, b), (b, a), (a, b)):
        dst.sync_apply(src.sync_changes(dst.sync_summary()))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    clock = Clock(tick_ms=1)
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        yield a, b


def _conflict(a: Replica, b: Replica, *, roles: tuple[str, str],
              importance: float | None = None) -> str:
    mid = a.add("base", importance=importance)
    _sync(a, b)
    a.update(mid, "from a", actor="alice", role=roles[0])
    b.update(mid, "from b", actor="bob", role=roles[1])
    _sync(a, b)
    return mid


def test_a_resolution_carries_the_arbiters_role_and_ranks_by_it_later(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    mid = _conflict(a, b, roles=("worker", "worker"))
    out = resolve_conflicts(a, lambda c: Resolution.merged("settled"), deadline_ms=0,
                            actor="arbiter", role="lead")
    assert [(o.version.actor, o.version.role) for o in out if o.version] == \
        [("arbiter", "lead")]
    b.update(mid, "a worker disagrees", actor="bob", role="worker")  # concurrent with it
    _sync(a, b)
    later = a.get(mid)
    assert later is not None and later.conflicted
    assert any(h.op == "RESOLVE" and h.role == "lead" for h in b.history(mid))
    picked = RolePriority(["lead", "worker"])(Conflict.from_record(later))
    assert picked is not None and picked.text == "settled"


def test_a_pick_without_a_role_keeps_the_picked_versions_role(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    _conflict(a, b, roles=("lead", "worker"))
    out = resolve_conflicts(a, RolePriority(["lead", "worker"]), deadline_ms=0)
    assert out[0].version is not None
    assert (out[0].version.text, out[0].version.role) == ("from a", "lead")


def test_only_conflicts_at_or_above_the_threshold_reach_the_escalation(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    low = _conflict(a, b, roles=("worker", "worker"), importance=0.2)
    high = _conflict(a, b, roles=("worker", "worker"), importance=0.9)
    unset = _conflict(a, b, roles=("worker", "worker"))
    asked: list[str] = []

    def llm(conflict: Conflict) -> Resolution:
        asked.append(conflict.memory_id)
        return Resolution.merged("the LLM's merge")

    out = resolve_conflicts(a, lambda c: None, deadline_ms=0, escalate=llm,
                            importance_threshold=0.5)
    assert asked == [high]
    assert {o.memory_id: o.version is not None for o in out} == \
        {low: False, high: True, unset: False}
    written = [o.version for o in out if o.version is not None]
    assert written[0].resolver.endswith("llm") and written[0].importance == 0.9  # type: ignore[union-attr]
    # a cheap opinion settles even an important conflict without the LLM
    other = _conflict(a, b, roles=("lead", "worker"), importance=1.0)
    asked.clear()
    resolve_conflicts(a, RolePriority(["lead"]), deadline_ms=0, escalate=llm,
                      importance_threshold=0.5)
    assert asked == [] and not a.get(other).conflicted  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError):
        resolve_conflicts(a, lambda c: None, importance_threshold=1.5)

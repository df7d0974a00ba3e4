"""The round's peer draw over a large membership: the same draw as a copied pool, made
without walking the membership (``gossip.protocol._choice``, simulations/members.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any, overload

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memmesh.gossip.protocol import PolicyConfig, SessionConfig, SyncPolicy
from memmesh.gossip.protocol._choice import Excluding
from memmesh.simulations.members import Members

EPOCH_MS = 1_700_000_000_000


@given(st.integers(1, 60), st.sets(st.integers(0, 80), max_size=10), st.integers(0, 2**32))
def test_the_excluding_view_is_the_copied_pool_and_draws_alike(
        n: int, excluded: set[int], seed: int) -> None:
    candidates = [f"m{i}" for i in range(n)]
    skip = [f"m{i}" for i in sorted(excluded)]  # some not among the candidates at all
    pool = [c for c in candidates if c not in skip]
    view = Excluding(candidates, skip)
    assert len(view) == len(pool) and list(view) == pool
    assert [view[i] for i in range(-len(pool), len(pool))] == pool + pool
    assert view[1:3] == pool[1:3]
    with pytest.raises(IndexError):
        view[len(pool)]
    a, b = random.Random(seed), random.Random(seed)
    if pool:
        assert pool[a.randrange(len(pool))] == view[b.randrange(len(view))]
        assert a.random() == b.random()  # the stream goes on alike


class CountingMembers(Sequence[str]):
    """A membership that counts how many of its items a caller read."""

    def __init__(self, members: Members) -> None:
        self.members = members
        self.reads = 0

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        self.reads += 1
        return self.members.index(value, start, *([] if stop is None else [stop]))

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[str]:
        for member in self.members:
            self.reads += 1
            yield member

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        self.reads += 1 if isinstance(i, int) else len(range(len(self))[i])
        return self.members[i]


def test_a_round_reads_a_few_members_not_all_of_them() -> None:
    members = Members()
    for i in range(10_000):
        members.append(f"n{i:05d}")
    counting = CountingMembers(members)
    policy = SyncPolicy("n00042", fingerprint=b"choice", rng=random.Random(3), now=0.0,
                        max_drift_ms=60_000, config=PolicyConfig(),
                        session_config=SessionConfig(), scope_of=lambda peer: None)
    dial = policy.round(0.0, EPOCH_MS, candidates=counting)
    assert dial is not None and dial != "n00042" and dial in members
    assert counting.reads <= 4  # O(links), where a copied pool read all 10,000


def test_members_keep_positions_through_leaves() -> None:
    members = Members()
    for name in ["a", "b", "c", "d"]:
        members.append(name)
    members.remove("b")
    assert list(members) == ["a", "c", "d"]
    assert [members.index(m) for m in members] == [0, 1, 2]
    assert "b" not in members and members[-1] == "d"
    with pytest.raises(ValueError):
        members.index("b")

"""Differential test: three LMDB replicas against an in-memory reference model.

The model is the causal specification of the memory semantics, independent of any
CRDT machinery: every write, delete and forget is an *event* that supersedes exactly the
events of its key its replica had seen. A replica's visible memory is the set of write
events of the key it knows that no known event supersedes, unless it knows a forget of
the key. Sync transfers knowledge of events (shareable keys only). Random operations and
random pairwise syncs with tiny ``max_bytes`` must keep every replica equal to its model,
and two replicas with the same shareable knowledge must have equal ``state_digest``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from storage_helpers import sync_once, ticking

from memmesh.storage import Replica

N = 3


@dataclass(frozen=True)
class ModelEvent:
    eid: int
    key: str
    kind: str  # "write" | "delete" | "forget"
    text: str | None
    supersedes: frozenset[int]


@dataclass
class ModelReplica:
    events: dict[int, ModelEvent] = field(default_factory=dict)

    def of_key(self, key: str) -> list[ModelEvent]:
        return [e for e in self.events.values() if e.key == key]

    def forgotten(self, key: str) -> bool:
        return any(e.kind == "forget" for e in self.of_key(key))

    def standing(self, key: str) -> set[str]:
        evs = self.of_key(key)
        if any(e.kind == "forget" for e in evs):
            return set()
        dead = set().union(*(e.supersedes for e in evs)) if evs else set()
        return {e.text for e in evs if e.kind == "write" and e.eid not in dead}  # type: ignore[misc]


class ReplicaMachine(RuleBasedStateMachine):
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memmesh-model-")
        self.clock = ticking()
        self.replicas = [Replica.open(f"{self.dir}/r{i}", replica_id=f"r{i}", clock=self.clock)
                         for i in range(N)]
        self.models = [ModelReplica() for _ in range(N)]
        self.private: set[str] = set()
        self.ids: dict[str, str] = {}  # model key -> memory id
        self.next_eid = 0

    def teardown(self) -> None:
        for r in self.replicas:
            r.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _event(self, i: int, key: str, kind: str, text: str | None) -> None:
        model = self.models[i]
        self.next_eid += 1
        seen = frozenset(e.eid for e in model.of_key(key))
        event = ModelEvent(self.next_eid, key, kind, text, seen)
        model.events[event.eid] = event

    def _text(self) -> str:
        return f"text-{self.next_eid + 1}"

    @rule(target=keys, i=st.integers(0, N - 1), private=st.booleans())
    def add(self, i: int, private: bool) -> str:
        text = self._text()
        mid = self.replicas[i].add(text, user_id="u", run_id="run" if private else None,
                                   actor=f"a{i}")
        self.ids[mid] = mid
        if private:
            self.private.add(mid)
        self._event(i, mid, "write", text)
        return mid

    @rule(i=st.integers(0, N - 1), key=keys)
    def update(self, i: int, key: str) -> None:
        if not self.models[i].standing(key):
            return
        text = self._text()
        self.replicas[i].update(key, text)
        self._event(i, key, "write", text)

    @rule(i=st.integers(0, N - 1), key=keys)
    def delete(self, i: int, key: str) -> None:
        if not self.models[i].standing(key):
            assert self.replicas[i].delete(key) is False
            return
        assert self.replicas[i].delete(key) is True
        self._event(i, key, "delete", None)

    @rule(i=st.integers(0, N - 1), key=keys)
    def forget(self, i: int, key: str) -> None:
        model = self.models[i]
        if not model.of_key(key) or model.forgotten(key):
            return
        assert self.replicas[i].forget(key) is True
        self._event(i, key, "forget", None)

    @rule(i=st.integers(0, N - 1), j=st.integers(0, N - 1), key=keys)
    def concurrent_update_and_forget(self, i: int, j: int, key: str) -> None:
        """An update on one replica and a forget on another, before either syncs."""
        if i == j:
            return
        self.update(j, key)
        self.forget(i, key)

    @rule(a=st.integers(0, N - 1), b=st.integers(0, N - 1),
          max_bytes=st.sampled_from([150, 400, 1500, None]))
    def sync(self, a: int, b: int, max_bytes: int | None) -> None:
        if a == b:
            return
        sync_once(self.replicas[a], self.replicas[b], max_bytes=max_bytes)
        src, dst = self.models[a], self.models[b]
        for eid, event in src.events.items():
            if event.key not in self.private:
                dst.events[eid] = event

    @precondition(lambda self: True)
    @invariant()
    def replicas_match_their_models(self) -> None:
        for replica, model in zip(self.replicas, self.models, strict=True):
            keys = {e.key for e in model.events.values()}
            for key in keys:
                record = replica.get(key)
                expected = model.standing(key)
                got = set() if record is None else {v.text for v in record.versions}
                assert got == expected, (replica.replica_id, key, got, expected)
                if record is not None:
                    assert record.conflicted == (len(expected) > 1)
            listed = {r.id for r in replica.list(user_id="u")}
            assert listed == {k for k in keys if model.standing(k)}

    @invariant()
    def equal_knowledge_means_equal_digest(self) -> None:
        def shared(model: ModelReplica) -> frozenset[int]:
            return frozenset(e for e, ev in model.events.items() if ev.key not in self.private)

        for a in range(N):
            for b in range(a + 1, N):
                same = shared(self.models[a]) == shared(self.models[b])
                equal = self.replicas[a].state_digest() == self.replicas[b].state_digest()
                if same:
                    assert equal
                elif equal:
                    # different event sets may still give equal states (e.g. both forgot
                    # the key, or superseded events): compare what is visible
                    for key in {e.key for e in self.models[a].events.values()} | \
                            {e.key for e in self.models[b].events.values()}:
                        if key in self.private:
                            continue
                        assert self.models[a].standing(key) == self.models[b].standing(key)


ReplicaMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30,
                                            deadline=None)
TestReplicaModel = ReplicaMachine.TestCase

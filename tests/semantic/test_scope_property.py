"""Property: a search never returns anything outside its filter, and misses nothing in it.

Random memories over several apps, users, agents and runs, some expiring, deleted or
forgotten, some written on a peer (shared ones arrive by sync; private ones must never
surface). For random filters, the hits must be exactly the live, unexpired, visible
memories that match the filter.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from replica_helpers import Clock, sync_pair

from memmesh.crdt import base_replica
from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

FIELDS = {
    "app_id": (None, "app1", "app2"),
    "user_id": (None, "u1", "u2", "u3"),
    "agent_id": (None, "g1"),
    "run_id": (None, "run1"),
}
WORDS = ("tea", "coffee", "deploy", "friday", "budget", "kyoto", "cello", "postgres")

memory_specs = st.fixed_dictionaries(
    {
        "text": st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
        **{name: st.sampled_from(values) for name, values in FIELDS.items()},
        "ttl": st.sampled_from((None, None, 1, 1000)),
        "tier": st.sampled_from((None, "shared", "private")),
        "fate": st.sampled_from(("live", "live", "live", "delete", "forget")),
        "origin": st.sampled_from(("local", "peer")),
    }
)
filters = st.dictionaries(
    st.sampled_from(tuple(FIELDS)), st.none(), max_size=3
).flatmap(
    lambda keys: st.fixed_dictionaries(
        {name: st.sampled_from(FIELDS[name]) for name in keys}
    )
)


@settings(max_examples=25)
@given(
    specs=st.lists(memory_specs, min_size=1, max_size=25),
    searches=st.lists(st.tuples(filters, st.sampled_from(WORDS)), min_size=1, max_size=4),
    elapsed_ms=st.sampled_from((0, 2_000, 2_000_000)),
)
def test_search_returns_exactly_the_visible_memories_in_scope(
    specs: list[dict[str, Any]],
    searches: list[tuple[dict[str, str | None], str]],
    elapsed_ms: int,
) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp, \
            Replica.open(Path(tmp) / "a", replica_id="ra", clock=clock, durable=False) as a, \
            Replica.open(Path(tmp) / "b", replica_id="rb", clock=clock, durable=False) as b:
        index = SemanticIndex(a, HashingEmbedder(64), clock=clock)
        index.refresh()
        expected: dict[str, dict[str, Any]] = {}
        for spec in specs:
            writer = a if spec["origin"] == "local" else b
            scope = {name: spec[name] for name in FIELDS}
            memory_id = writer.add(spec["text"], ttl=spec["ttl"], tier=spec["tier"], **scope)
            if spec["fate"] == "delete":
                writer.delete(memory_id)
            elif spec["fate"] == "forget":
                writer.forget(memory_id)
            tier = spec["tier"] or ("private" if spec["run_id"] is not None else "shared")
            visible = spec["fate"] == "live" and (writer is a or tier == "shared")
            if visible:
                expected[memory_id] = {**scope, "ttl": spec["ttl"]}
        index.search("tea")  # the index catches up incrementally from here
        sync_pair(b, a)
        clock.advance(elapsed_ms)
        now = clock()
        for scope_filter, word in searches:
            hits = index.search(word, k=100, **scope_filter)
            for hit in hits:
                record = hit.record
                assert all(getattr(record, k) == v for k, v in scope_filter.items())
                assert record.expires_at is None or record.expires_at > now
                assert record.tier == "shared" or base_replica(record.created_at.replica) == "ra"
            wanted = {
                memory_id
                for memory_id, scope in expected.items()
                if all(scope[k] == v for k, v in scope_filter.items())
                and (scope["ttl"] is None or scope["ttl"] * 1000 > elapsed_ms)
            }
            assert sorted(h.id for h in hits) == sorted(wanted)

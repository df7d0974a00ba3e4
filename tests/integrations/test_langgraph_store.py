"""``MemmeshStore`` meets LangGraph's expectations of a store.

Every test taking ``case`` runs twice: against LangGraph's own ``InMemoryStore`` (the
reference behaviour) and against ``MemmeshStore``; both use the same deterministic
hashing embedder for ``query=`` searches. The tests at the end are memmesh-only: what a
replicated store adds (two replicas, concurrent puts, scopes that peers' ACLs honour).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore
from replica_helpers import Clock, sync

from memmesh.crdt import InvalidArgumentError
from memmesh.integrations.langgraph import MemmeshStore, matches_filter
from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import PeerScope, Replica

EMBEDDER = HashingEmbedder()


class State(TypedDict, total=False):
    """The state of the graphs in the LangGraph runtime test."""

    message: str
    answer: str


def embed_texts(texts: list[str]) -> list[list[float]]:
    return [row.tolist() for row in EMBEDDER.embed(texts)]


@dataclass
class Case:
    name: str
    store: BaseStore
    advance: Callable[[float], None]  # minutes of wall time

    @property
    def memmesh(self) -> bool:
        return self.name == "memmesh"


def _open(tmp_path: Path, name: str, *, indexed: bool, **options: Any) -> Iterator[Case]:
    if name == "inmemory":
        index = {"dims": EMBEDDER.dimension, "embed": embed_texts, "fields": ["text"]}
        yield Case(name, InMemoryStore(index=index if indexed else None), lambda m: None)
        return
    clock = Clock()
    with Replica.open(tmp_path / "replica", clock=clock, durable=False) as replica:
        sem = SemanticIndex(replica, HashingEmbedder()) if indexed else None
        store = MemmeshStore(replica, index=sem, fields=["text"], **options)
        yield Case(name, store, lambda minutes: clock.advance(int(minutes * 60_000)))


@pytest.fixture(params=["inmemory", "memmesh"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    yield from _open(tmp_path, request.param, indexed=False)


@pytest.fixture(params=["inmemory", "memmesh"])
def indexed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    yield from _open(tmp_path, request.param, indexed=True)


def keys(items: list[Any]) -> set[tuple[tuple[str, ...], str]]:
    return {(item.namespace, item.key) for item in items}


# -- the shared behaviour ---------------------------------------------------------------


def test_put_get_overwrite_and_delete(case: Case) -> None:
    store = case.store
    assert store.get(("users", "alice"), "prefs") is None
    store.put(("users", "alice"), "prefs", {"theme": "dark", "langs": ["en", "fr"]})
    item = store.get(("users", "alice"), "prefs")
    assert isinstance(item, Item)
    assert (item.namespace, item.key) == (("users", "alice"), "prefs")
    assert item.value == {"theme": "dark", "langs": ["en", "fr"]}
    assert item.created_at.tzinfo is not None and item.updated_at >= item.created_at
    store.put(("users", "alice"), "prefs", {"theme": "light"})
    assert store.get(("users", "alice"), "prefs").value == {"theme": "light"}
    assert store.get(("users", "bob"), "prefs") is None
    store.delete(("users", "alice"), "prefs")
    assert store.get(("users", "alice"), "prefs") is None
    store.delete(("users", "alice"), "prefs")  # deleting a missing item is a no-op
    store.put(("users", "alice"), "prefs", {"theme": "solarized"})
    assert store.get(("users", "alice"), "prefs").value == {"theme": "solarized"}


def test_search_by_namespace_prefix(case: Case) -> None:
    store = case.store
    store.put(("users", "alice", "prefs"), "ui", {"theme": "dark"})
    store.put(("users", "alice", "notes"), "n1", {"text": "likes tea"})
    store.put(("users", "bob", "prefs"), "ui", {"theme": "light"})
    store.put(("docs",), "readme", {"text": "hello"})
    assert keys(store.search(("users",))) == {
        (("users", "alice", "prefs"), "ui"), (("users", "alice", "notes"), "n1"),
        (("users", "bob", "prefs"), "ui")}
    assert keys(store.search(("users", "alice"))) == {
        (("users", "alice", "prefs"), "ui"), (("users", "alice", "notes"), "n1")}
    assert keys(store.search(("users", "alice", "prefs"))) == {
        (("users", "alice", "prefs"), "ui")}
    assert store.search(("users", "al")) == []  # labels match whole, not as strings
    assert len(store.search(())) == 4
    (hit,) = store.search(("docs",))
    assert hit.value == {"text": "hello"} and hit.score is None


def test_search_filters_on_values(case: Case) -> None:
    store = case.store
    ns = ("tasks",)
    store.put(ns, "a", {"status": "open", "priority": 1, "meta": {"owner": "ann"},
                        "tags": ["x", "y"]})
    store.put(ns, "b", {"status": "done", "priority": 5, "meta": {"owner": "ben"}})
    store.put(ns, "c", {"status": "open", "priority": 9, "meta": {"owner": "ben"}})

    def found(**filter: Any) -> set[str]:
        return {item.key for item in store.search(ns, filter=filter)}

    assert found(status="open") == {"a", "c"}
    assert found(status="open", priority=9) == {"c"}
    assert found(meta={"owner": "ben"}) == {"b", "c"}
    assert found(priority={"$gt": 1}) == {"b", "c"}
    assert found(priority={"$gte": 1, "$lt": 9}) == {"a", "b"}
    assert found(priority={"$lte": 5}) == {"a", "b"}
    assert found(status={"$ne": "open"}) == {"b"}
    assert found(status={"$eq": "done"}) == {"b"}
    assert found(tags=["x", "y"]) == {"a"}
    assert found(tags=["y", "x"]) == set()
    assert found(missing="anything") == set()


def test_search_limit_and_offset_page_through_everything(case: Case) -> None:
    store = case.store
    for i in range(7):
        store.put(("log",), f"k{i}", {"i": i})
    pages = [store.search(("log",), limit=3, offset=o) for o in (0, 3, 6, 9)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    seen = [item.key for page in pages for item in page]
    assert sorted(seen) == [f"k{i}" for i in range(7)]  # disjoint pages, nothing lost
    assert [i.key for i in store.search(("log",), limit=7)] == [f"k{i}" for i in range(7)]
    assert len(store.search(("log",), limit=2, filter={"i": {"$gte": 3}})) == 2


def test_list_namespaces_with_prefix_suffix_depth_and_pages(case: Case) -> None:
    store = case.store
    for ns in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
               ("a", "c", "f"), ("x", "y")]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == sorted([
        ("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
        ("a", "c", "f"), ("x", "y")])
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("x",)]
    assert store.list_namespaces(prefix=("a",), limit=2, offset=1) == [
        ("a", "b", "d", "e"), ("a", "b", "d", "i")]
    # (After deleting a namespace's last item, InMemoryStore still lists it and memmesh
    # does not, as the SQL stores: that difference is left out of the shared tests.)


def test_ttl_expires_items_on_every_read(case: Case) -> None:
    store = case.store
    if not store.supports_ttl:  # LangGraph's contract for stores without TTL
        with pytest.raises(NotImplementedError):
            store.put(("s",), "k", {"v": 1}, ttl=1)
        return
    store.put(("s",), "short", {"v": 1}, ttl=1)
    store.put(("s",), "long", {"v": 2}, ttl=10)
    store.put(("s",), "forever", {"v": 3})
    case.advance(0.5)
    assert store.get(("s",), "short", refresh_ttl=False) is not None
    case.advance(0.6)
    assert store.get(("s",), "short") is None
    assert keys(store.search(("s",))) == {(("s",), "long"), (("s",), "forever")}
    store.put(("gone",), "k", {"v": 1}, ttl=1)
    case.advance(2)
    assert ("gone",) not in store.list_namespaces()


def test_ttl_refresh_on_read_and_on_put(case: Case) -> None:
    store = case.store
    if not store.supports_ttl:
        return
    store.put(("s",), "read", {"v": 1}, ttl=1)
    store.put(("s",), "unread", {"v": 2}, ttl=1)
    store.put(("s",), "rewritten", {"v": 3}, ttl=1)
    case.advance(0.8)
    assert store.get(("s",), "read").value == {"v": 1}  # refreshes: 1 minute from now
    store.put(("s",), "rewritten", {"v": 4}, ttl=1)
    case.advance(0.8)
    assert store.get(("s",), "read", refresh_ttl=False).value == {"v": 1}
    assert store.get(("s",), "unread") is None
    assert store.get(("s",), "rewritten", refresh_ttl=False).value == {"v": 4}
    store.put(("s",), "rewritten", {"v": 5})  # no TTL any more
    case.advance(60)
    assert store.get(("s",), "rewritten").value == {"v": 5}


def test_batch_runs_reads_against_the_state_before_its_writes(case: Case) -> None:
    store = case.store
    store.put(("b",), "old", {"v": 0})
    results = store.batch([
        PutOp(("b",), "new", {"v": 1}),
        GetOp(("b",), "old"),
        GetOp(("b",), "new"),
        PutOp(("b",), "new", {"v": 2}),
        SearchOp(("b",), None, 10, 0),
        ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
        PutOp(("b",), "old", None),
    ])
    assert results[0] is None and results[3] is None and results[6] is None
    assert results[1].value == {"v": 0}
    assert results[2] is None
    assert keys(results[4]) == {(("b",), "old")}
    assert results[5] == [("b",)]
    assert store.get(("b",), "new").value == {"v": 2}  # the batch's last put wins
    assert store.get(("b",), "old") is None


def test_async_twins(case: Case) -> None:
    store = case.store

    async def main() -> None:
        await store.aput(("a",), "k", {"v": 1})
        await store.aput(("a", "deeper"), "k2", {"v": 2})
        assert (await store.aget(("a",), "k")).value == {"v": 1}
        assert keys(await store.asearch(("a",), filter={"v": 2})) == {(("a", "deeper"), "k2")}
        assert await store.alist_namespaces(prefix=("a",)) == [("a",), ("a", "deeper")]
        await store.adelete(("a",), "k")
        assert await store.aget(("a",), "k") is None
        got = await store.abatch([GetOp(("a", "deeper"), "k2"), GetOp(("a",), "k")])
        assert got[0].value == {"v": 2} and got[1] is None

    asyncio.run(main())


def test_concurrent_async_calls_run_in_arrival_order_each_as_its_own_batch(case: Case) -> None:
    store = case.store

    async def main() -> list[Any]:
        return await asyncio.gather(
            store.aput(("a",), "k", {"v": 1}),
            store.aget(("a",), "k"),                            # sees the put before it
            store.abatch([PutOp(("a",), "j", {"v": 2}), GetOp(("a.b",), "k")]),  # refused
            store.aput(("a",), "k", {"v": 3}),
            store.asearch(("a",)),
            return_exceptions=True)

    put, got, refused, _, found = asyncio.run(main())
    assert put is None and got.value == {"v": 1}
    assert [(i.key, i.value) for i in found if i.key == "k"] == [("k", {"v": 3})]
    if case.memmesh:  # (InMemoryStore does not validate raw ops: test above)
        assert isinstance(refused, InvalidNamespaceError)  # its caller's error alone
        assert [i.key for i in found] == ["k"]  # and none of that batch was written


def test_many_concurrent_async_calls_share_worker_thread_hops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counting(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", "?"))
        return await to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    with Replica.open(tmp_path / "r", durable=False) as replica:
        store = MemmeshStore(replica)

        async def main() -> list[Any]:
            await asyncio.gather(*[store.aput(("a",), f"k{i}", {"v": i}) for i in range(50)])
            return await asyncio.gather(*[store.aget(("a",), f"k{i}") for i in range(50)])

        got = asyncio.run(main())
    assert [item.value for item in got] == [{"v": i} for i in range(50)]
    assert len(hops) <= 4  # one round per gather (two at most each), not 100 hops


def test_a_cancelled_async_call_leaves_the_store_working(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as replica:
        store = MemmeshStore(replica)

        async def main() -> Any:
            await store.aput(("a",), "k", {"v": 1})
            task = asyncio.create_task(store.aget(("a",), "k"))
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return await store.aget(("a",), "k")

        assert asyncio.run(main()).value == {"v": 1}


def test_invalid_namespaces_are_refused_and_change_nothing(case: Case) -> None:
    store = case.store
    for bad in [(), ("langgraph", "x"), ("a.b",), ("",)]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "k", {"v": 1})
    assert store.list_namespaces() == []


def test_batch_validates_namespaces_of_raw_ops(tmp_path: Path) -> None:
    # (InMemoryStore skips this check for ops handed straight to batch; LangGraph asks
    # stores to run validate_op_namespace on them, and MemmeshStore does.)
    with Replica.open(tmp_path / "r", durable=False) as replica:
        store = MemmeshStore(replica)
        with pytest.raises(InvalidNamespaceError):
            store.batch([PutOp(("ok",), "k", {"v": 1}), GetOp(("a.b",), "k")])
        assert store.list_namespaces() == []


def test_query_search_ranks_by_meaning_and_respects_filters(indexed: Case) -> None:
    store = indexed.store
    ns = ("users", "alice", "memories")
    store.put(ns, "m1", {"text": "alice prefers dark mode in the editor", "kind": "pref"})
    store.put(ns, "m2", {"text": "alice is allergic to peanuts", "kind": "health"})
    store.put(ns, "m3", {"text": "the editor font is fira code", "kind": "pref"})
    store.put(ns, "m4", {"text": "dark mode please", "kind": "pref"}, index=False)
    store.put(("other",), "o1", {"text": "alice prefers dark mode in the editor"})
    hits = store.search(("users",), query="alice prefers dark mode in the editor")
    assert hits[0].key == "m1" and hits[0].score is not None
    assert hits[1].score is not None and hits[0].score > hits[1].score
    assert hits[-1].key == "m4" and hits[-1].score is None  # not indexed: last, unscored
    assert {h.key for h in hits} == {"m1", "m2", "m3", "m4"}
    peanut = store.search(ns, query="peanuts allergy", filter={"kind": "health"})
    assert [h.key for h in peanut] == ["m2"]
    page = store.search(ns, query="alice prefers dark mode in the editor", limit=1, offset=1)
    assert len(page) == 1 and page[0].key != "m1"


def test_range_filters_skip_non_numeric_values_and_refuse_non_numeric_bounds(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as replica:
        store = MemmeshStore(replica)
        for key, n in [("num", 5), ("text", "five"), ("list", [5]), ("missing", None)]:
            store.put(("a",), key, {"n": n} if n is not None else {})
        store.put(("a",), "numeric-text", {"n": "7"})
        assert keys(store.search(("a",), filter={"n": {"$gt": 1}})) == {
            (("a",), "num"), (("a",), "numeric-text")}
        with pytest.raises(InvalidArgumentError):
            store.search(("a",), filter={"n": {"$lt": "ten"}})


def test_updated_at_increases_with_each_put_within_one_millisecond(pair: Any) -> None:
    a, _, _ = pair  # the clock stands still: every put lands in the same millisecond
    store = MemmeshStore(a)
    times = []
    for n in range(3):
        store.put(("a",), "k", {"n": n})
        item = store.get(("a",), "k")
        assert item is not None
        times.append(item.updated_at)
    assert times == sorted(times) and len(set(times)) == 3


def test_filter_helper_matches_langgraph_semantics() -> None:
    assert matches_filter({"a": {"b": 1}}, {"a": {"b": 1}})
    assert not matches_filter({"a": 1}, {"a": {"b": 1}})
    assert matches_filter({"n": 3}, {"n": {"$gt": 2, "$lt": 4}})
    assert not matches_filter({}, {"n": {"$gt": 2}})
    assert matches_filter({"x": 1}, None)


# -- what memmesh adds: replication ------------------------------------------------------



def test_items_written_on_one_replica_are_read_on_another(pair: Any) -> None:
    a, b, _ = pair
    store_a, store_b = MemmeshStore(a), MemmeshStore(b)
    store_a.put(("users", "alice"), "prefs", {"theme": "dark"})
    assert store_b.get(("users", "alice"), "prefs") is None
    sync(a, b)
    assert store_b.get(("users", "alice"), "prefs").value == {"theme": "dark"}
    store_b.delete(("users", "alice"), "prefs")
    sync(a, b)
    assert store_a.get(("users", "alice"), "prefs") is None


def test_concurrent_first_puts_converge_on_one_item(pair: Any) -> None:
    a, b, clock = pair
    store_a, store_b = MemmeshStore(a), MemmeshStore(b)
    store_a.put(("team",), "plan", {"v": "from a"})
    clock.advance(1000)
    store_b.put(("team",), "plan", {"v": "from b"})  # neither has seen the other's
    sync(a, b)
    assert store_a.get(("team",), "plan").value == {"v": "from b"}  # newest wins, on both
    assert store_b.get(("team",), "plan").value == {"v": "from b"}
    assert len(store_a.search(("team",))) == 1 and store_a.list_namespaces() == [("team",)]
    clock.advance(1000)
    store_a.put(("team",), "plan", {"v": "agreed"})
    sync(a, b)
    assert store_b.get(("team",), "plan").value == {"v": "agreed"}
    assert len(b.list(app_id="langgraph")) == 1  # the duplicate memory was retired
    assert a.state_digest() == b.state_digest()


def test_namespaces_map_onto_scopes_that_peers_acls_honour(pair: Any) -> None:
    a, b, _ = pair
    store = MemmeshStore(a, scope=lambda ns: {"user_id": ns[1]} if len(ns) > 1 else {})
    store.put(("memories", "alice"), "m", {"text": "alice's"})
    store.put(("memories", "bob"), "m", {"text": "bob's"})
    (record,) = a.list(user_id="alice")
    assert record.app_id == "langgraph"
    only_bob = PeerScope(users=frozenset({"bob"}))
    b.sync_apply(a.sync_changes(b.sync_summary(), peer=only_bob))
    store_b = MemmeshStore(b)
    assert store_b.get(("memories", "bob"), "m").value == {"text": "bob's"}
    assert store_b.get(("memories", "alice"), "m") is None


def test_a_store_sees_only_its_own_scope(pair: Any) -> None:
    a, _, _ = pair
    MemmeshStore(a, user_id="alice").put(("n",), "k", {"v": "alice"})
    MemmeshStore(a, user_id="bob").put(("n",), "k", {"v": "bob"})
    a.add("an ordinary memory, not an item", app_id="langgraph")
    assert MemmeshStore(a, user_id="alice").get(("n",), "k").value == {"v": "alice"}
    assert MemmeshStore(a, user_id="bob").get(("n",), "k").value == {"v": "bob"}
    assert len(MemmeshStore(a, user_id="alice").search(())) == 1  # not the plain memory


def test_expired_items_are_swept_from_the_replica(pair: Any) -> None:
    a, _, clock = pair
    store = MemmeshStore(a)
    store.put(("s",), "k", {"v": 1}, ttl=1)
    store.put(("s",), "kept", {"v": 2})
    clock.advance(120_000)
    assert store.sweep_expired() == 1
    assert [r.metadata["langgraph"]["key"] for r in a.list()] == ["kept"]


def test_graphs_compiled_with_the_store_share_memory_across_replicas(pair: Any) -> None:
    """The LangGraph runtime injects MemmeshStore into nodes like any other store."""

    def remember(state: State, *, store: BaseStore) -> State:
        store.put(("users", "alice"), "fact", {"text": state["message"]})
        return {"answer": "stored"}

    def recall(state: State, *, store: BaseStore) -> State:
        hits = store.search(("users", "alice"), query=state["message"], limit=1)
        return {"answer": hits[0].value["text"] if hits else ""}

    def graph(node: Any, store: MemmeshStore) -> Any:
        builder = StateGraph(State)
        builder.add_node("step", node)
        builder.add_edge(START, "step")
        builder.add_edge("step", END)
        return builder.compile(store=store)

    a, b, _ = pair
    writer = graph(remember, MemmeshStore(a))
    reader = graph(recall, MemmeshStore(b, index=SemanticIndex(b, HashingEmbedder()),
                                        fields=["text"]))
    writer.invoke({"message": "alice prefers dark mode"})
    assert reader.invoke({"message": "dark mode"})["answer"] == ""
    sync(a, b)
    assert reader.invoke({"message": "dark mode"})["answer"] == "alice prefers dark mode"


def test_a_batch_with_one_bad_value_writes_nothing(tmp_path: Path) -> None:
    from memmesh.crdt import InvalidArgumentError

    with Replica.open(tmp_path / "r", durable=False) as replica:
        store = MemmeshStore(replica)
        store.put(("a",), "kept", {"v": 0})
        for bad in ({"v": {1, 2}}, {"v": b"bytes are not JSON"}, {"v": float("nan")}):
            with pytest.raises(InvalidArgumentError):
                store.batch([PutOp(("a",), "new", {"v": 1}), PutOp(("a",), "kept", None),
                             PutOp(("a",), "bad", bad)])
        with pytest.raises(InvalidArgumentError):
            store.put(("a",), "k", {"v": 1}, ttl=-5)
        assert keys(store.search(("a",))) == {(("a",), "kept")}
        assert len(replica.list()) == 1


def test_a_trimmed_journal_makes_the_store_rescan(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's cursor fell off the truncated journal while another store on the same
    replica deleted an item: the store rebuilds from the replica, not from its cache."""
    from memmesh.storage import _journal as journal

    monkeypatch.setattr(journal, "JOURNAL_MAX", 4)
    with Replica.open(tmp_path / "r", durable=False) as replica:
        reader, writer = MemmeshStore(replica), MemmeshStore(replica)
        writer.put(("a",), "doomed", {"v": 0})
        assert reader.get(("a",), "doomed") is not None
        writer.delete(("a",), "doomed")
        for n in range(10):  # pushes the delete out of the journal
            writer.put(("a",), f"k{n}", {"v": n})
        assert replica.changes_since(1).reset  # the delete's entry is gone
        assert reader.get(("a",), "doomed") is None
        assert keys(reader.search(("a",), limit=50)) == {(("a",), f"k{n}") for n in range(10)}

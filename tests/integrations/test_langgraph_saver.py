"""``MemmeshSaver`` meets LangGraph's expectations of a checkpointer.

Every test taking ``saver`` runs twice: against LangGraph's own ``InMemorySaver`` (the
reference behaviour) and against ``MemmeshSaver``. The tests at the end are
memmesh-only: a thread interrupted on one replica and resumed on another after sync,
concurrent copies of one checkpoint converging, and the capabilities ``InMemorySaver``
lacks (``delete_for_runs``, ``copy_thread``, ``prune``).
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from replica_helpers import sync

from memmesh.crdt import InvalidArgumentError
from memmesh.integrations._lg_saver_records import Records
from memmesh.integrations.langgraph_saver import MemmeshSaver
from memmesh.storage import PeerScope, Replica


@pytest.fixture(params=["inmemory", "memmesh"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    if request.param == "inmemory":
        yield InMemorySaver()
        return
    with Replica.open(tmp_path / "replica", durable=False) as replica:
        yield MemmeshSaver(replica)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    with (Replica.open(tmp_path / "a", durable=False) as a,
          Replica.open(tmp_path / "b", durable=False) as b):
        yield a, b


def thread(thread_id: str, ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def put(saver: BaseCheckpointSaver[Any], config: RunnableConfig, values: dict[str, Any],
        step: int, **metadata: Any) -> RunnableConfig:
    """Put a checkpoint holding ``values``, each channel at a new version."""
    parent = saver.get_tuple(config) if config["configurable"].get("checkpoint_id") else None
    checkpoint: Checkpoint = empty_checkpoint()
    versions = dict(parent.checkpoint["channel_versions"]) if parent else {}
    new = {k: saver.get_next_version(versions.get(k), None) for k in values}
    checkpoint["channel_versions"] = {**versions, **new}
    checkpoint["channel_values"] = dict(values)
    return saver.put(config, checkpoint, {"source": "loop", "step": step, **metadata}, new)


def ids(tuples: Any) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


# -- InMemorySaver semantics -----------------------------------------------------------


def test_get_tuple_returns_the_latest_checkpoint_or_the_one_asked_for(
        saver: BaseCheckpointSaver[Any]) -> None:
    assert saver.get_tuple(thread("t")) is None
    first = put(saver, thread("t"), {"a": 1}, 0)
    second = put(saver, first, {"b": 2}, 1, note="x")
    latest = saver.get_tuple(thread("t"))
    assert latest is not None
    assert latest.config == second
    assert latest.checkpoint["channel_values"] == {"a": 1, "b": 2}
    assert latest.metadata == {"source": "loop", "step": 1, "note": "x"}
    assert latest.parent_config == first
    older = saver.get_tuple(first)
    assert older is not None and older.checkpoint["channel_values"] == {"a": 1}
    assert older.parent_config is None
    assert saver.get_tuple(thread("t", checkpoint_id="no-such-id")) is None
    assert saver.get_tuple(thread("t", ns="other")) is None


def test_list_is_newest_first_and_honours_filter_before_and_limit(
        saver: BaseCheckpointSaver[Any]) -> None:
    config = thread("t")
    made = []
    for step in range(4):
        config = put(saver, config, {"n": step}, step, parity=step % 2)
        made.append(config["configurable"]["checkpoint_id"])
    put(saver, thread("u"), {"n": 9}, 0)
    assert ids(saver.list(thread("t"))) == made[::-1]
    assert ids(saver.list(thread("t"), limit=2)) == made[:1:-1]
    assert ids(saver.list(thread("t"), before=thread("t", checkpoint_id=made[2]))) == [
        made[1], made[0]]
    assert ids(saver.list(thread("t"), filter={"parity": 1})) == [made[3], made[1]]
    assert ids(saver.list(thread("t", checkpoint_id=made[1]))) == [made[1]]
    assert len(list(saver.list(None))) == 5
    assert ids(saver.list(thread("t", ns="sub"))) == []


def test_put_writes_keeps_the_first_regular_write_and_the_last_special_one(
        saver: BaseCheckpointSaver[Any]) -> None:
    config = put(saver, thread("t"), {"a": 1}, 0)
    saver.put_writes(config, [("a", 1), ("b", 2)], "task-2", "p2")
    saver.put_writes(config, [("a", 10)], "task-2", "p2")  # idx 0 again: kept first
    saver.put_writes(config, [("__error__", "boom")], "task-1", "p1")
    saver.put_writes(config, [("__error__", "again")], "task-1", "p1")  # special: replaced
    found = saver.get_tuple(thread("t"))
    assert found is not None
    assert found.pending_writes == [("task-1", "__error__", "again"),
                                    ("task-2", "a", 1), ("task-2", "b", 2)]


def test_delete_thread_removes_its_checkpoints_and_writes_only(
        saver: BaseCheckpointSaver[Any]) -> None:
    config = put(saver, thread("t"), {"a": 1}, 0)
    saver.put_writes(config, [("a", 2)], "task")
    put(saver, thread("u"), {"a": 3}, 0)
    saver.delete_thread("t")
    assert saver.get_tuple(thread("t")) is None
    assert ids(saver.list(thread("t"))) == []
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["u"]
    again = put(saver, thread("t"), {"a": 4}, 0)  # a deleted thread id can be reused
    found = saver.get_tuple(thread("t"))
    assert found is not None and found.config == again and found.pending_writes == []


def test_async_methods_match_the_sync_ones(saver: BaseCheckpointSaver[Any]) -> None:
    async def run() -> None:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"a": 1}
        version = saver.get_next_version(None, None)
        checkpoint["channel_versions"] = {"a": version}
        config = await saver.aput(thread("t"), checkpoint, {"step": 0}, {"a": version})
        await saver.aput_writes(config, [("a", 2)], "task")
        found = await saver.aget_tuple(thread("t"))
        assert found is not None and found.pending_writes == [("task", "a", 2)]
        assert [t.config async for t in saver.alist(thread("t"))] == [config]
        await saver.adelete_thread("t")
        assert await saver.aget_tuple(thread("t")) is None

    asyncio.run(run())


# -- a graph across replicas -----------------------------------------------------------


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None, *, ask: bool) -> Any:
    def draft(state: State) -> State:
        return {"log": ["draft"]}

    def review(state: State) -> State:
        answer = interrupt("approve?") if ask else "yes"
        return {"log": [f"review:{answer}"]}

    def publish(state: State) -> State:
        return {"log": ["publish"]}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_node("publish", publish)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=checkpointer)


def test_a_thread_interrupted_on_one_replica_resumes_on_another_after_sync(
        replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    config: RunnableConfig = {"configurable": {"thread_id": "conversation"}}
    paused = build_graph(MemmeshSaver(a), ask=True).invoke({"log": ["start"]}, config)
    assert "__interrupt__" in paused
    on_b = build_graph(MemmeshSaver(b), ask=True)
    assert on_b.get_state(config).next == ()  # nothing of the thread before sync
    sync(a, b)
    assert on_b.get_state(config).next == ("review",)
    final = on_b.invoke(Command(resume="yes"), config)
    straight = build_graph(None, ask=False).invoke({"log": ["start"]})
    assert final == straight == {"log": ["start", "draft", "review:yes", "publish"]}
    sync(a, b)
    assert build_graph(MemmeshSaver(a), ask=True).get_state(config).values == final


def test_concurrent_copies_of_one_checkpoint_converge_to_one_record(
        replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": 1}
    checkpoint["channel_versions"] = {"a": "1"}
    for replica in replicas:
        saver = MemmeshSaver(replica)
        config = saver.put(thread("t"), checkpoint, {"step": 0}, {"a": "1"})
        saver.put_writes(config, [("a", 2)], "task")
    sync(a, b)
    assert a.state_digest() == b.state_digest()
    for replica in replicas:
        found = list(MemmeshSaver(replica).list(None))
        assert len(found) == 1
        assert found[0].checkpoint["channel_values"] == {"a": 1}
        assert found[0].pending_writes == [("task", "a", 2)]


def test_a_peer_scoped_to_another_user_does_not_receive_the_thread(
        replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    config: RunnableConfig = {"configurable": {"thread_id": "conversation"}}
    build_graph(MemmeshSaver(a, user_id="alice"), ask=True).invoke({"log": ["a"]}, config)
    build_graph(MemmeshSaver(a, user_id="bob"), ask=True).invoke({"log": ["b"]}, config)
    assert [t.checkpoint["channel_values"].get("log") for t in
            MemmeshSaver(a, user_id="alice").list(config, limit=1)] == [["a", "draft"]]
    only_bob = PeerScope(users=frozenset({"bob"}))
    b.sync_apply(a.sync_changes(b.sync_summary(), peer=only_bob))
    assert list(MemmeshSaver(b, user_id="alice").list(None)) == []
    assert list(MemmeshSaver(b).list(None)) == []
    on_b = build_graph(MemmeshSaver(b, user_id="bob"), ask=True)
    assert on_b.invoke(Command(resume="yes"), config)["log"] == [
        "b", "draft", "review:yes", "publish"]


def test_a_saver_refuses_a_malformed_scope() -> None:
    with pytest.raises(InvalidArgumentError):
        MemmeshSaver(None, user_id="")  # type: ignore[arg-type]


# -- delete_for_runs, copy_thread, prune -----------------------------------------------


def test_delete_for_runs_removes_a_runs_checkpoints_writes_and_orphaned_blobs_only(
        replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    saver = MemmeshSaver(a)
    first = put(saver, thread("t"), {"a": 1}, 0, run_id="r1")
    second = put(saver, first, {"b": 2}, 1, run_id="r2")
    saver.put_writes(first, [("a", 5)], "task")
    put(saver, thread("t", ns="child"), {"c": 3}, 0, run_id="r1")
    put(saver, thread("u"), {"a": 9}, 0, run_id="r3")
    saver.delete_for_runs(["r1", "no-such-run"])
    assert ids(saver.list(thread("t"))) == ids([saver.get_tuple(second)])
    assert ids(saver.list(thread("t", ns="child"))) == []
    kept = saver.get_tuple(second)
    assert kept is not None and kept.checkpoint["channel_values"] == {"a": 1, "b": 2}
    blobs = {e[2] for e in Records(a, {"app_id": "langgraph"}).entries("t") if e[0] == "b"}
    assert blobs == {"a", "b"}  # the child namespace's blob went with its checkpoint
    assert not any(e[0] == "w" for e in Records(a, {"app_id": "langgraph"}).entries("t"))
    assert len(list(saver.list(thread("u")))) == 1
    saver.delete_for_runs(["r2", "r3"])
    assert list(saver.list(None)) == []
    assert Records(a, {"app_id": "langgraph"}).threads() == frozenset()


def test_a_copied_thread_resumes_on_another_replica_and_leaves_its_source_paused(
        replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    source: RunnableConfig = {"configurable": {"thread_id": "source"}}
    copy: RunnableConfig = {"configurable": {"thread_id": "copy"}}
    saver_a = MemmeshSaver(a)
    build_graph(saver_a, ask=True).invoke({"log": ["start"]}, source)
    saver_a.copy_thread("source", "copy")
    saver_a.copy_thread("no-such-thread", "empty")
    assert list(saver_a.list(thread("empty"))) == []
    sync(a, b)
    on_b = build_graph(MemmeshSaver(b), ask=True)
    assert on_b.get_state(copy).next == ("review",)
    final = on_b.invoke(Command(resume="yes"), copy)
    assert final == {"log": ["start", "draft", "review:yes", "publish"]}
    assert on_b.get_state(source).next == ("review",)


def extend(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for write in writes for item in write)]


class DeltaState(TypedDict):
    log: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=3)]


def test_prune_keep_latest_keeps_the_ancestors_a_delta_channel_is_rebuilt_from(
        replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    saver = MemmeshSaver(a)
    graph = StateGraph(DeltaState)
    graph.add_node("step", lambda state: {"log": ["x"]})
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    app = graph.compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    for turn in range(4):  # the fourth turn's checkpoints hold no snapshot of `log`
        app.invoke({"log": [f"in{turn}"]}, config)
    before = app.get_state(config).values
    assert len(before["log"]) == 8
    made = len(list(saver.list(config)))
    saver.prune(["t"], strategy="keep_latest")
    assert 1 < len(list(saver.list(config))) < made
    assert app.get_state(config).values == before
    saver.prune(["t"], strategy="delete")
    assert list(saver.list(config)) == []


def test_prune_keep_latest_keeps_each_namespaces_newest_checkpoint_with_its_writes(
        replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    saver = MemmeshSaver(a)
    config = thread("t")
    for step in range(3):
        config = put(saver, config, {"n": step}, step)
    saver.put_writes(config, [("n", 7)], "task")
    child = put(saver, put(saver, thread("t", ns="child"), {"m": 0}, 0), {"m": 1}, 1)
    saver.prune(["t"])
    assert ids(saver.list(thread("t"))) == ids([saver.get_tuple(config)])
    assert ids(saver.list(thread("t", ns="child"))) == ids([saver.get_tuple(child)])
    latest = saver.get_tuple(thread("t"))
    assert latest is not None and latest.checkpoint["channel_values"] == {"n": 2}
    assert latest.pending_writes == [("task", "n", 7)]


def test_prune_refuses_an_unknown_strategy_and_changes_nothing(
        replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    saver = MemmeshSaver(a)
    put(saver, put(saver, thread("t"), {"a": 1}, 0), {"a": 2}, 1)
    digest = a.state_digest()
    with pytest.raises(InvalidArgumentError):
        saver.prune(["t"], strategy="keep_oldest")
    assert a.state_digest() == digest


def test_async_upkeep_methods_match_the_sync_ones(replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    saver = MemmeshSaver(a)
    put(saver, put(saver, thread("t"), {"a": 1}, 0, run_id="r"), {"a": 2}, 1, run_id="s")

    async def run() -> None:
        await saver.acopy_thread("t", "u")
        await saver.aprune(["u"])
        await saver.adelete_for_runs(["s"])

    asyncio.run(run())
    assert len(list(saver.list(thread("t")))) == 1  # run s's checkpoint went
    assert list(saver.list(thread("u"))) == []  # pruned to run s's, then deleted

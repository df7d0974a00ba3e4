"""The asyncio facade: awaitable memory operations that keep LMDB off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from replica_helpers import Clock, sync

from memmesh.crdt import MemmeshError
from memmesh.integrations.aio import AsyncMemory, FacadeClosedError
from memmesh.semantic import HashingEmbedder, LastWriterWins
from memmesh.storage import Replica, UnknownMemoryError


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class ThreadRecorder:
    """A replica proxy noting the thread of every call (and able to hold one call)."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self.threads: set[int] = set()
        self.gate: threading.Event | None = None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._replica, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads.add(threading.get_ident())
            if self.gate is not None and name == "add":
                assert self.gate.wait(30), "the loop never released the gate"
            return target(*args, **kwargs)

        return call


def test_operations_round_trip_through_the_facade(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", embedder=HashingEmbedder()) as mem:
            memory_id = await mem.add("alice prefers dark mode", user_id="alice", actor="ui")
            record = await mem.get(memory_id)
            assert record is not None and record.text == "alice prefers dark mode"
            await mem.update(memory_id, "alice prefers light mode", actor="ui")
            assert (await mem.get(memory_id)).text == "alice prefers light mode"
            other = await mem.add("bob likes tea", user_id="bob")
            assert [r.id for r in await mem.list(user_id="alice")] == [memory_id]
            hits = await mem.search("light mode", user_id="alice")
            assert [h.id for h in hits] == [memory_id]
            assert [e.op for e in await mem.history(memory_id)] == ["ADD", "UPDATE"]
            assert await mem.delete(memory_id) is True
            assert await mem.get(memory_id) is None
            assert await mem.forget(other) is True
            assert await mem.get(other) is None
            assert [e.op for e in await mem.history(other)] == ["FORGET"]
            await mem.set_add("tasks", "ship it", user_id="alice")
            assert await mem.set_members("tasks") == frozenset({"ship it"})
            assert await mem.set_remove("tasks", "ship it") is True
            status = await mem.status()
            assert status["replica"]["replica_id"] == mem.replica.replica_id
            assert "node" not in status

    run(main())


def test_a_view_reads_and_searches_the_tiers_an_agent_sees(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", embedder=HashingEmbedder()) as mem:
            fact = await mem.add("alice speaks French", user_id="alice")
            own = await mem.add("billing uses EUR", user_id="alice", agent_id="billing",
                                metadata={"kind": "config"})
            bobs = await mem.add("bob speaks French", user_id="bob")
            view = mem.view(user_id="alice", agent_id="billing")
            assert [r.id for r in await view.list()] == [own, fact]
            assert [r.id for r in await view.list(filters={"kind": "config"})] == [own]
            assert (await view.get(fact)).text == "alice speaks French"
            assert await view.get(bobs) is None
            hits = await view.search("speaks French", 1)
            assert [(h.id, h.scope_tier) for h in hits] == [(fact, "user")]
            hits = await mem.search("speaks French", view=view.view,
                                    filters={"kind": "config"})
            assert [(h.id, h.scope_tier) for h in hits] == [(own, "agent")]

    run(main())


def test_bulk_deletes_through_the_facade_record_the_actor(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", embedder=HashingEmbedder()) as mem:
            scratch = [await mem.add(f"step {i}", user_id="alice", run_id="r1")
                       for i in range(2)]
            kept = await mem.add("alice speaks French", user_id="alice")
            bob = await mem.add("bob speaks French", user_id="bob")
            assert await mem.end_run("r1", actor="agent") == 2
            assert (await mem.history(scratch[0]))[-1].actor == "agent"
            assert await mem.delete_all(user_id="bob", actor="admin") == 1
            assert await mem.delete(kept, actor="admin") is True
            assert (await mem.history(kept))[-1].actor == "admin"
            assert await mem.get(bob) is None and await mem.list() == []

    run(main())


def test_writes_through_the_facade_carry_importance_and_removals_actor_and_role(
        tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", embedder=HashingEmbedder()) as mem:
            memory_id = await mem.add("rotate the deploy key", importance=0.9)
            await mem.update(memory_id, "rotate the deploy key weekly", importance=0.4)
            assert (await mem.get(memory_id)).importance == 0.4
            other = await mem.add("lunch at noon")
            assert await mem.delete(memory_id, actor="ops", role="admin") is True
            assert await mem.forget(other, actor="ops", role="admin") is True
            for mid, op in ((memory_id, "DELETE"), (other, "FORGET")):
                last = (await mem.history(mid))[-1]
                assert (last.op, last.actor, last.role) == (op, "ops", "admin")

    run(main())


def test_replica_work_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    """An add blocked inside the replica does not stop the loop: the loop itself is what
    releases it (if the call ran on the loop thread this would time out)."""

    async def main() -> None:
        with Replica.open(tmp_path / "r") as replica:
            proxy = ThreadRecorder(replica)
            proxy.gate = threading.Event()
            mem = AsyncMemory(proxy)
            loop_thread = threading.get_ident()
            adding = asyncio.ensure_future(mem.add("written while the loop runs"))
            ticks = 0
            while not proxy.threads:
                await asyncio.sleep(0.001)
            for _ in range(5):  # the loop keeps turning while the add is held
                await asyncio.sleep(0)
                ticks += 1
            assert not adding.done()
            proxy.gate.set()
            memory_id = await adding
            assert ticks == 5
            assert await mem.get(memory_id) is not None
            assert loop_thread not in proxy.threads
            await mem.aclose()

    run(main())


def test_errors_surface_as_the_replica_raised_them(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r") as mem:
            with pytest.raises(UnknownMemoryError):
                await mem.update("0" * 32, "nothing here")
            with pytest.raises(MemmeshError):
                await mem.add("x", policy="sometimes")
            assert await mem.list() == []

    run(main())


def test_closed_facade_refuses_calls_and_closes_its_replica_once(tmp_path: Path) -> None:
    async def main() -> AsyncMemory:
        mem = await AsyncMemory.open(tmp_path / "r")
        await mem.add("x")
        await mem.aclose()
        await mem.aclose()
        assert mem.closed
        with pytest.raises(FacadeClosedError):
            await mem.get("x")
        return mem

    run(main())
    with Replica.open(tmp_path / "r") as again:  # the environment was released
        assert len(again.list()) == 1


def test_concurrent_adds_from_many_tasks_are_all_durable(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", threads=3) as mem:
            ids = await asyncio.gather(*(mem.add(f"note {i}", agent_id="a")
                                         for i in range(40)))
            assert len(set(ids)) == 40
            assert {r.text for r in await mem.list(agent_id="a")} == \
                {f"note {i}" for i in range(40)}

    run(main())


def test_conflicts_are_listed_and_resolved_through_the_facade(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        with Replica.open(tmp_path / "a", clock=clock) as a, \
                Replica.open(tmp_path / "b", clock=clock) as b:
            memory_id = a.add("deploy on friday", app_id="proj")
            sync(a, b)
            a.update(memory_id, "deploy on monday")
            clock.advance(1000)
            b.update(memory_id, "deploy on tuesday")
            sync(a, b)
            mem = AsyncMemory(a)
            (conflict,) = await mem.conflicts(app_id="proj")
            assert conflict.id == memory_id
            # elected: resolves at once; else its takeover wait starts at this sighting
            outcomes = await mem.resolve_conflicts(LastWriterWins())
            clock.advance(60_000)  # past every arbiter deadline
            outcomes += await mem.resolve_conflicts(LastWriterWins())
            assert [o.memory_id for o in outcomes] == [memory_id]
            assert (await mem.get(memory_id)).text == "deploy on tuesday"
            assert await mem.conflicts() == []
            await mem.aclose()

    run(main())


def test_two_facades_with_background_nodes_replicate(tmp_path: Path) -> None:
    """Writes made through one facade reach the other over a real (loopback) node."""

    async def main() -> None:
        base = {"insecure": True, "mdns": False, "interval": 0.2}
        async with await AsyncMemory.open(tmp_path / "a", node=base) as a:
            seeds = [("127.0.0.1", a.node.port)]
            async with await AsyncMemory.open(tmp_path / "b", node={**base, "seeds": seeds}) as b:
                memory_id = await a.add("the build is green", agent_id="ci")
                assert await b.wait_until(lambda: b.replica.get(memory_id) is not None,
                                          timeout=60)
                await b.update(memory_id, "the build is red")

                def seen_on_a() -> bool:
                    record = a.replica.get(memory_id)
                    return record is not None and record.text == "the build is red"

                assert await a.wait_until(seen_on_a, timeout=60)
                status = await b.status()
                assert a.replica.replica_id in {p.replica_id for p in status["node"].peers}

    run(main())


def test_add_messages_runs_the_memory_pipeline_off_the_event_loop(tmp_path: Path) -> None:
    """One turn of the LLM pipeline through the facade: an async LLM extracts a fact
    (with nothing similar in the view, the ADD needs no second call); neither the model
    nor the replica runs on the loop's thread."""
    answers = ['{"facts": ["alice plays chess"]}']
    llm_threads: list[int] = []

    async def llm(prompt: str) -> str:
        llm_threads.append(threading.get_ident())
        return answers.pop(0)

    async def main() -> None:
        async with await AsyncMemory.open(tmp_path / "r", embedder=HashingEmbedder()) as mem:
            loop_thread = threading.get_ident()
            chat = [{"role": "user", "content": "I play chess on Sundays"},
                    {"role": "assistant", "content": "Noted."}]
            result = await mem.add_messages(chat, llm=llm, user_id="alice", actor="bot")
            assert [(d.decision, d.fallback) for d in result] == [("ADD", False)]
            assert result.llm_calls == 1 and not answers
            assert llm_threads and loop_thread not in llm_threads
            (record,) = await mem.list(user_id="alice")
            assert (record.id, record.text) == (result[0].memory_id, "alice plays chess")
            last = (await mem.history(record.id))[-1]
            assert (last.op, last.actor) == ("ADD", "bot")
            with pytest.raises(MemmeshError):  # bad messages: refused before any call
                await mem.add_messages([{"role": "user"}], llm=llm, user_id="alice")
            assert len(await mem.list()) == 1

    run(main())

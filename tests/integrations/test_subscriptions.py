"""Subscriptions where agents live: a callback on ``BackgroundNode`` told of a peer's
writes over real gossip, and ``AsyncMemory.watch`` / ``subscribe`` on asyncio. Every
wait is on a condition with a generous bound."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from memmesh.integrations.aio import AsyncMemory
from memmesh.integrations.background import BackgroundNode
from memmesh.storage import ChangeEvent, Replica

KEY = b"0123456789abcdef0123456789abcdef"


def test_a_node_subscription_hears_a_peers_write_and_its_own_and_stops_with_the_node(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        with BackgroundNode(ra, cluster_key=KEY, mdns=False, interval=0.2) as a, \
                BackgroundNode(rb, cluster_key=KEY, mdns=False, interval=0.2,
                               seeds=[("127.0.0.1", a.port)]) as b:
            events: list[ChangeEvent] = []
            arrived = threading.Condition()

            def on_change(event: ChangeEvent) -> None:
                with arrived:
                    events.append(event)
                    arrived.notify_all()

            subscription = b.subscribe(on_change, user_id="alice")
            remote = ra.add("alice speaks French", user_id="alice")
            ra.add("bob is elsewhere", user_id="bob")
            with arrived:
                assert arrived.wait_for(lambda: any(e.memory_id == remote for e in events), 120)
            local = rb.add("alice is in Lyon", user_id="alice")
            with arrived:
                assert arrived.wait_for(lambda: any(e.memory_id == local for e in events), 120)
            heard = [(e.memory_id, e.op, e.local) for e in events]
            assert heard == [(remote, "ADD", False), (local, "ADD", True)]
            assert events[0].versions[0].text == "alice speaks French"
            assert subscription.running
        assert not subscription.running and subscription.error is None


def test_async_memory_watch_and_subscribe_deliver_in_order_and_stop_at_aclose(
        tmp_path: Path) -> None:
    async def main() -> None:
        memory = await AsyncMemory.open(tmp_path / "r", durable=False)
        watch = memory.watch(agent_id="billing")
        received: list[str] = []
        changed = asyncio.Condition()

        async def on_change(event: ChangeEvent) -> None:
            async with changed:
                received.append(event.op)
                changed.notify_all()

        async def until(count: int) -> None:
            async with changed:
                await asyncio.wait_for(changed.wait_for(lambda: len(received) >= count), 60)

        task = memory.subscribe(on_change, agent_id="billing")
        mid = await memory.add("invoice sent", agent_id="billing")
        await memory.add("elsewhere", agent_id="support")
        await until(1)
        await memory.update(mid, "invoice paid")
        await until(2)
        assert received == ["ADD", "UPDATE"]
        first = await watch.anext(timeout=60)
        assert first is not None and first.memory_id == mid
        await memory.aclose()
        assert task.done() and watch.closed

    asyncio.run(main())

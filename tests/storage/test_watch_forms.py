"""The forms around a watch: ``JournalFollower`` (the cursor every derived view can
share), ``Subscription`` (a callback thread), and ``async for`` under trio and asyncio."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import trio

from memmesh.storage import ChangeEvent, JournalFollower, Replica, Subscription
from memmesh.storage import _journal as journal


def test_a_follower_starts_with_a_rebuild_then_hands_each_changed_id_once_per_page(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        a = r.add("one")
        follower = JournalFollower(r, page=10)
        calls: list[object] = []
        follower.catch_up(calls.append, lambda: calls.append("rebuild"))
        assert calls == ["rebuild"] and follower.cursor == r.journal_seq()
        r.update(a, "two")
        b = r.add("three")
        r.update(a, "four")
        calls.clear()
        assert follower.catch_up(calls.append, lambda: calls.append("rebuild")) == 1
        assert calls == [[b, a]]  # each id once, in the order of its last change


def test_a_follower_keeps_its_cursor_when_handling_a_page_fails(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        follower = JournalFollower(r, since=0)
        mid = r.add("one")

        def broken(ids: list[str]) -> None:
            raise RuntimeError("handler crashed")

        with pytest.raises(RuntimeError):
            follower.catch_up(broken, lambda: None)
        assert follower.cursor == 0  # the page is read again: at least once
        seen: list[list[str]] = []
        follower.catch_up(seen.append, lambda: None)
        assert seen == [[mid]]


def test_a_follower_past_the_trimmed_journal_rebuilds_from_a_cursor_read_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "JOURNAL_MAX", 4)
    with Replica.open(tmp_path / "r", durable=False) as r:
        follower = JournalFollower(r, since=0)
        for i in range(10):
            r.add(f"m{i}")
        page = follower.read()
        assert page is not None and page.reset and page.cursor == r.journal_seq()
        late = r.add("written during the rebuild")  # after the cursor was read
        follower.advance(page)
        page = follower.read()
        assert page is not None and page.memory_ids() == [late]


def test_a_subscription_calls_back_in_order_and_stops_before_a_failing_event(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        got: list[str | None] = []
        done = threading.Event()

        def callback(event: ChangeEvent) -> None:
            if event.versions and event.versions[0].text == "poison":
                done.set()
                raise ValueError("cannot handle this one")
            got.append(event.memory_id)

        subscription = Subscription(r.watch(page=1), callback).start()
        ids = [r.add("one"), r.add("two")]
        poison = r.add("poison")
        assert done.wait(60)
        subscription.close()
        assert not subscription.running
        assert got == ids and isinstance(subscription.error, ValueError)
        resumed = r.watch(since=subscription.cursor, timeout=0)
        assert [e.memory_id for e in resumed] == [poison]  # redelivered


def test_async_for_under_asyncio_sees_writes_made_from_other_threads(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:

        async def main() -> list[str | None]:
            watch = r.watch(user_id="alice", poll_interval=120.0)
            writer = asyncio.create_task(asyncio.to_thread(
                lambda: [r.add("for bob", user_id="bob"), r.add("for alice", user_id="alice")]))
            seen = []
            async for event in watch:
                seen.append(event.memory_id)
                break
            await writer
            assert r._signal.subscribers == 0  # the wake-up callback left with the wait
            return seen

        seen = asyncio.run(main())
        assert [r.get(m).text for m in seen] == ["for alice"]  # type: ignore[arg-type, union-attr]


async def test_async_for_under_trio_is_woken_by_commits_and_times_out_idle(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", durable=False) as r:
        watch = r.watch(poll_interval=120.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, r.add, "from a thread")
            event = await watch.anext(timeout=60)
        assert event is not None and event.op == "ADD"
        assert await watch.anext(timeout=0) is None
        watch.close()
        assert [e async for e in watch] == []

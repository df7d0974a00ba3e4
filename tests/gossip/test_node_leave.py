"""A node that stops gracefully leaves: it retires its replica's origin and hands the
entry, with the writes a peer still lacks, to its connected peers before it closes, so
the peers stop naming that origin without ``retire_after`` (docs/internals.md, "Retired
origins"). Anti-entropy rounds are made very slow: only the leave moves anything."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import trio
import trio.testing
from node_helpers import connect, mem_node, wait_for

from memmesh.crdt import unpackb
from memmesh.gossip import Node
from memmesh.storage import Replica
from memmesh.storage import _retired as rt

SLOW = dict(interval=10_000.0, repair_interval=math.inf)


def listed(r: Replica) -> dict[str, int]:
    summary: dict[str, Any] = unpackb(r.sync_summary())  # type: ignore[assignment]
    out: dict[str, int] = summary["wm"]
    return out


def retired(r: Replica, origin: str) -> int:
    with r._env.read() as txn:
        return rt.retired(txn, origin)


def quiet(node: Node) -> bool:
    return node.policy.pending_requests == 0 and all(
        lk.session.idle for lk in node.policy.registered.values())


async def linked(a: Node, b: Node) -> None:
    await wait_for(lambda: a.peers == (b.replica_id,) and b.peers == (a.replica_id,))
    await wait_for(lambda: a.status().syncs >= 1 and b.status().syncs >= 1)
    await wait_for(lambda: quiet(a) and quiet(b))


async def test_a_stopping_node_hands_its_last_writes_and_its_retirement_to_a_peer(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra, \
            Replica.open(tmp_path / "b", replica_id="rb") as rb:
        async with mem_node(rb, **SLOW) as b, trio.open_nursery() as nursery:
            async with mem_node(ra, **SLOW) as a:
                connect(nursery, a, b)
                await linked(a, b)
                first = ra.add("an early note", user_id="u", sync="pull")
                await a.sync_now()  # b's summary is known to a...
                await b.sync_now()  # ...and b holds the first write
                await wait_for(lambda: rb.get(first) is not None)
                await wait_for(lambda: quiet(a) and quiet(b))
                last = ra.add("a last note", user_id="u", sync="pull")  # not pushed
                origin = ra.origin
                assert origin is not None and rb.get(last) is None
            # a has stopped: b got the last write and the entry, and lists a no more
            await wait_for(lambda: rb.get(last) is not None and retired(rb, origin) == 2)
            assert origin not in listed(rb)
            nursery.cancel_scope.cancel()


async def test_a_node_without_peers_still_retires_its_origin_locally(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra:
        async with mem_node(ra, **SLOW):
            ra.add("alone", user_id="u")
            origin = ra.origin
        assert origin is not None and retired(ra, origin) == 1


async def test_retire_on_close_false_keeps_the_origin_unretired(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra:
        async with mem_node(ra, retire_on_close=False, **SLOW):
            ra.add("kept", user_id="u")
            origin = ra.origin
        assert origin is not None and retired(ra, origin) == 0


async def test_a_node_stopped_by_an_error_does_not_leave(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra:
        try:
            async with mem_node(ra, **SLOW):
                ra.add("x", user_id="u")
                raise KeyError("boom")
        except* KeyError:
            pass
        origin = ra.origin
        assert origin is not None and retired(ra, origin) == 0

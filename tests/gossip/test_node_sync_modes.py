"""The trio node honours each write's delivery mode: push-mode writes are pushed at
once, pull-mode writes wait for a pull (anti-entropy rounds are made very slow here, so
only an explicit pull moves them)."""

from __future__ import annotations

import math
from pathlib import Path

import trio
import trio.testing
from node_helpers import connect, mem_node, wait_for

from memmesh.gossip import Node
from memmesh.storage import Replica

SLOW = dict(interval=10_000.0, repair_interval=math.inf)


def quiet(node: Node) -> bool:
    """Nothing queued for storage, nothing in flight or syncing on any link."""
    return node.policy.pending_requests == 0 and all(
        lk.session.idle for lk in node.policy.registered.values())


def writes_seen(node: Node) -> int:
    """Local writes the node's journal loop has handed to its policy."""
    return node.policy.counters["writes:push"] + node.policy.counters["writes:pull"]


async def linked(a: Node, b: Node) -> None:
    await wait_for(lambda: a.peers == (b.replica_id,) and b.peers == (a.replica_id,))
    await wait_for(lambda: a.status().syncs >= 1 and b.status().syncs >= 1)
    await wait_for(lambda: quiet(a) and quiet(b))


async def test_a_pull_mode_write_waits_for_a_pull_while_a_push_mode_write_is_pushed(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra, \
            Replica.open(tmp_path / "b", replica_id="rb") as rb:
        async with mem_node(ra, **SLOW) as a, mem_node(rb, **SLOW) as b, \
                trio.open_nursery() as nursery:
            connect(nursery, a, b)
            await linked(a, b)
            pushes, syncs = a.status().pushes, b.status().syncs

            pulled = ra.add("project state", sync="pull", user_id="u")
            await wait_for(lambda: writes_seen(a) == 1)
            await wait_for(lambda: quiet(a))
            assert a.status().pushes == pushes and a.policy.counters["writes:pull"] == 1
            assert rb.get(pulled) is None and b.status().syncs == syncs

            await b.sync_now()  # what an anti-entropy round does
            await wait_for(lambda: rb.get(pulled) is not None)
            assert a.status().pushes == pushes

            pushed = ra.add("a preference", sync="push", user_id="u")
            await wait_for(lambda: rb.get(pushed) is not None)
            assert a.status().pushes == pushes + 1
            assert a.policy.counters["writes:push"] == 1
            nursery.cancel_scope.cancel()


async def test_a_pull_default_node_still_pushes_priority_and_push_mode_writes(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "a", replica_id="ra") as ra, \
            Replica.open(tmp_path / "b", replica_id="rb") as rb:
        async with mem_node(ra, sync_default="pull", **SLOW) as a, \
                mem_node(rb, **SLOW) as b, trio.open_nursery() as nursery:
            connect(nursery, a, b)
            await linked(a, b)
            pushes = a.status().pushes

            plain = ra.add("no mode named")
            await wait_for(lambda: writes_seen(a) == 1)
            await wait_for(lambda: quiet(a))
            assert a.policy.counters["writes:pull"] == 1
            assert rb.get(plain) is None and a.status().pushes == pushes

            urgent = ra.add("urgent", priority=True)
            await wait_for(lambda: rb.get(urgent) is not None)
            assert a.status().pushes == pushes + 1
            # the push carried every write of a newer than b held: the pulled one too
            assert rb.get(plain) is not None
            named = ra.add("named push", sync="push")
            await wait_for(lambda: rb.get(named) is not None)
            assert a.status().pushes == pushes + 2
            nursery.cancel_scope.cancel()

"""The trio shell in one process: memory streams on a MockClock, then real sockets."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from gossip_fakes import FakeReplica, converged
from gossip_procs import TcpProxy
from node_helpers import connect, mem_node, wait_for

from memmesh.crdt import InvalidArgumentError
from memmesh.gossip import Node, SecurityError
from memmesh.gossip._link import Link
from memmesh.gossip._peers import load_peers
from memmesh.gossip.protocol import Session, SessionConfig
from memmesh.integrations.background import BackgroundNode
from memmesh.merge import Conflict, Resolution
from memmesh.storage import PeerScope, Replica

KEY = b"0123456789abcdef0123456789abcdef"


def test_a_node_without_a_key_refuses_to_start_unless_insecure() -> None:
    with pytest.raises(SecurityError):
        Node(FakeReplica("A"), mdns=False)
    Node(FakeReplica("A"), mdns=False, insecure=True)  # explicitly allowed


def test_a_too_short_cluster_key_is_refused() -> None:
    with pytest.raises(SecurityError):
        Node(FakeReplica("A"), mdns=False, cluster_key=b"short")


async def test_nodes_converge_over_memory_streams_on_a_mock_clock(
        mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    ra, rb, rc = FakeReplica("A"), FakeReplica("B"), FakeReplica("C")
    for i in range(300):
        (ra, rb, rc)[i % 3].write(f"k{i}", f"text {i}")
    cfg = SessionConfig(chunk_bytes=2000, retransmit=False)
    async with mem_node(ra, session_config=cfg) as a, \
            mem_node(rb, session_config=cfg) as b, \
            mem_node(rc, session_config=cfg) as c, trio.open_nursery() as nursery:
        connect(nursery, a, b)
        connect(nursery, b, c)  # a and c only meet through b
        await wait_for(lambda: converged([ra, rb, rc]))
        assert set(b.peers) == {"A", "C"}
        st = b.status()
        assert {p.replica_id for p in st.peers} == {"A", "C"}
        assert all(p.bytes_in > 0 and p.bytes_out > 0 for p in st.peers)
        assert st.syncs > 0
        nursery.cancel_scope.cancel()


async def test_local_writes_are_pushed_without_waiting_for_anti_entropy(
        mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    ra, rb = FakeReplica("A"), FakeReplica("B")
    async with mem_node(ra, interval=10_000.0) as a, mem_node(rb, interval=10_000.0) as b, \
            trio.open_nursery() as nursery:
        connect(nursery, a, b)
        await wait_for(lambda: a.peers == ("B",) and b.peers == ("A",))
        await wait_for(lambda: a.status().syncs >= 1 and b.status().syncs >= 1)
        start = trio.current_time()
        ra.write("news", "pushed at once", priority=True)
        await wait_for(lambda: "pushed at once" in rb.texts(), timeout=5.0)
        assert trio.current_time() - start < 1.0  # a journal poll or two, not a round
        assert a.status().pushes >= 1
        nursery.cancel_scope.cancel()


async def test_a_peer_that_goes_silent_is_dropped_and_the_node_carries_on(
        mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    ra = FakeReplica("A")
    async with mem_node(ra) as a, trio.open_nursery() as nursery:
        ours, theirs = trio.testing.memory_stream_pair()
        done: list[Link] = []

        async def run() -> None:
            done.append(await a.handle_stream(ours, outbound=False))

        nursery.start_soon(run)
        # the "peer" completes the handshake by hand, then never speaks again
        peer = Session(replica_id="Z", fingerprint=a.fingerprint, now=trio.current_time())
        await theirs.send_all(peer.data_to_send())
        await wait_for(lambda: a.peers == ("Z",))
        await wait_for(lambda: bool(done), timeout=600)  # idle timeout, on the mock clock
        assert done[0].session.close_reason == "timeout"
        assert a.peers == ()
        nursery.cancel_scope.cancel()


async def test_a_busy_node_rejects_extra_pulls_and_everyone_still_converges(
        mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    hub = FakeReplica("H")
    for i in range(400):
        hub.write(f"h{i}", "hub text " * 5)
    leaves = [FakeReplica(x) for x in "ABCD"]
    cfg = SessionConfig(chunk_bytes=1000, window=2, retransmit=False)
    async with mem_node(hub, max_syncs=1, session_config=cfg) as h, trio.open_nursery() as n:
        nodes = []
        for r in leaves:
            node = mem_node(r, session_config=cfg, interval=0.5)
            nodes.append(await n.start(_enter, node))
            connect(n, nodes[-1], h)
        await wait_for(lambda: converged([hub, *leaves]), timeout=600)
        assert h.status().rejected_busy > 0
        n.cancel_scope.cancel()


async def _enter(node: Node, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED
                 ) -> None:
    async with node:
        task_status.started(node)
        await trio.sleep_forever()


# ----------------------------------------------------------------- real sockets, real LMDB


async def test_private_and_acl_excluded_memories_never_cross_the_wire(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        ra.add("shared engineering note", app_id="eng")
        ra.add("PAYROLL-FOR-HR-ONLY", app_id="hr")
        ra.add("PRIVATE-SCRATCHPAD", app_id="eng", tier="private")
        ra.add("RUN-SCOPED-DEFAULT-PRIVATE", app_id="eng", run_id="run-1")
        async with Node(ra, insecure=True, mdns=False,
                        acl={rb.replica_id: PeerScope(apps=frozenset({"eng"}))}) as a:
            proxy = TcpProxy(("127.0.0.1", a.port))
            try:
                async with Node(rb, insecure=True, mdns=False,
                                seeds=[("127.0.0.1", proxy.port)], interval=0.2) as b:
                    await wait_for(lambda: len(rb.list()) == 1, 60)
                    ra.add("second engineering note", app_id="eng")
                    await wait_for(lambda: len(rb.list()) == 2, 60)
                    await wait_for(lambda: b.status().syncs >= 3, 60)  # more full rounds
                wire = proxy.wire()
            finally:
                proxy.close()
    assert b"shared engineering note" in wire  # the capture sees plaintext
    for secret in (b"PAYROLL", b"PRIVATE-SCRATCHPAD", b"RUN-SCOPED"):
        assert secret not in wire


async def test_the_resolver_hook_settles_a_concurrent_conflict_everywhere(
        tmp_path: Path) -> None:
    calls: list[str] = []

    def merge_texts(conflict: Conflict) -> Resolution:
        calls.append(conflict.memory_id)
        return Resolution.merged(" / ".join(sorted(v.text for v in conflict.versions)))

    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        mid = ra.add("draft")
        rb.sync_apply(ra.sync_changes(rb.sync_summary()))
        ra.update(mid, "version from a")
        rb.update(mid, "version from b")  # concurrent: neither saw the other
        async with Node(ra, cluster_key=KEY, mdns=False, resolver=merge_texts,
                        resolver_interval=0.1, resolve_deadline_ms=200) as a, \
                Node(rb, cluster_key=KEY, mdns=False, resolver=merge_texts,
                     resolver_interval=0.1, resolve_deadline_ms=200,
                     seeds=[("127.0.0.1", a.port)]):

            def settled() -> bool:
                x, y = ra.get(mid), rb.get(mid)
                return (x is not None and y is not None and not x.conflicted
                        and not y.conflicted and x.text == y.text)

            await wait_for(settled, 60)
        assert ra.get(mid).text == "version from a / version from b"  # type: ignore[union-attr]
        # the elected arbiter resolves (a takeover after the 200 ms deadline may add one)
        assert 1 <= len(calls) <= 2 and set(calls) == {mid}
        winner = ra.get(mid).versions[0]  # type: ignore[union-attr]
        assert winner.op == "RESOLVE" and winner.resolver.endswith("merge_texts")


async def test_the_node_escalates_only_important_conflicts_its_resolver_leaves(
        tmp_path: Path) -> None:
    cheap: list[str] = []
    escalated: list[str] = []

    def no_opinion(conflict: Conflict) -> None:
        cheap.append(conflict.memory_id)

    def arbiter(conflict: Conflict) -> Resolution:
        escalated.append(conflict.memory_id)
        return Resolution.merged(" / ".join(sorted(v.text for v in conflict.versions)))

    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        key = ra.add("rotate the deploy key", importance=0.8)
        lunch = ra.add("lunch at noon")
        rb.sync_apply(ra.sync_changes(rb.sync_summary()))
        for mid in (key, lunch):
            ra.update(mid, "from a")
            rb.update(mid, "from b")
        ra.sync_apply(rb.sync_changes(ra.sync_summary()))
        with pytest.raises(InvalidArgumentError):
            Node(ra, cluster_key=KEY, mdns=False, resolver=no_opinion,
                 importance_threshold=1.5)
        with pytest.raises(InvalidArgumentError):
            Node(ra, cluster_key=KEY, mdns=False, escalate=arbiter)
        async with Node(ra, cluster_key=KEY, mdns=False, resolver=no_opinion,
                        escalate=arbiter, importance_threshold=0.7,
                        resolver_interval=0.1, resolve_deadline_ms=0):
            await wait_for(lambda: {key, lunch} <= set(cheap)
                           and not ra.get(key).conflicted, 60)  # type: ignore[union-attr]
        assert ra.get(key).text == "from a / from b"  # type: ignore[union-attr]
        assert ra.get(lunch).conflicted  # type: ignore[union-attr]  # below the threshold
        assert set(escalated) == {key}


async def test_tls_nodes_bind_peer_ids_to_certificates_and_report_status(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        ra.add("over tls")
        async with Node(ra, cluster_key=KEY, mdns=False) as a, \
                Node(rb, cluster_key=KEY, mdns=False, seeds=[("127.0.0.1", a.port)]) as b:
            await wait_for(lambda: ra.state_digest() == rb.state_digest(), 60)
            await wait_for(lambda: b.status().peers and b.status().peers[0].lag == 0
                           and b.status().peers[0].last_sync is not None, 60)
            st = b.status()
            assert st.secure and st.peers[0].replica_id == ra.replica_id
            assert st.as_dict()["peers"][0]["address"] == ("127.0.0.1", a.port)
        # a node with another key never links up
        async with Node(ra, cluster_key=KEY, mdns=False) as a, \
                Node(rb, cluster_key=b"another key, another cluster!!!", mdns=False,
                     seeds=[("127.0.0.1", a.port)]) as b:
            with trio.move_on_after(1.5):
                await b.wait_for_peers(1)
            assert b.peers == () and a.peers == ()


def test_background_node_runs_from_plain_threads_and_asyncio(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        with BackgroundNode(ra, cluster_key=KEY, mdns=False) as a:
            b = BackgroundNode(rb, cluster_key=KEY, mdns=False, seeds=[("127.0.0.1", a.port)])

            async def agent() -> str:  # the asyncio example from the runner's docstring
                await asyncio.to_thread(b.start)
                try:
                    mid = ra.add("written by a plain thread")
                    for _ in range(3000):
                        if rb.get(mid) is not None:
                            break
                        await asyncio.sleep(0.01)
                    status = await asyncio.to_thread(b.status)
                    return status.peers[0].replica_id
                finally:
                    await asyncio.to_thread(b.stop)

            assert asyncio.run(agent()) == ra.replica_id
            assert not b.running
            assert threading.active_count() >= 1
            assert a.status().port == a.port
        start = time.monotonic()
        a.stop()  # idempotent
        assert time.monotonic() - start < 5


async def test_add_seed_makes_a_running_node_dial_that_address_and_remember_it(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        mid = ra.add("reached through a seed added at run time")
        async with Node(ra, cluster_key=KEY, mdns=False) as a, \
                Node(rb, cluster_key=KEY, mdns=False) as b:
            with trio.move_on_after(0.5):
                await b.wait_for_peers(1)
            assert b.peers == ()  # no seed, no mDNS: nobody to dial
            b.add_seed("127.0.0.1", a.port)
            await b.wait_for_peers(1, timeout=60)
            assert b.peers == (ra.replica_id,)
            await wait_for(lambda: rb.get(mid) is not None, 60)
        # the peer's address was saved: a restart dials it again without the seed
        assert [(p.replica_id, p.port) for p in load_peers(rb)] == [(ra.replica_id, a.port)]

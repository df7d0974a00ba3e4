"""A node never dies of a peer: cases 5, 9 and 10 of issue 11, the clock fence, and
link failures, against a live trio ``Node``."""

from __future__ import annotations

import contextlib
import logging
import struct
from pathlib import Path

import pytest
import trio
import trio.testing
from gossip_fakes import EPOCH_MS, FakeReplica, converged
from node_helpers import connect, mem_node, wait_for

from memmesh.gossip import ClusterCredentials, Node
from memmesh.gossip.protocol import Session, encode_frame
from memmesh.gossip.protocol import events as ev
from memmesh.gossip.protocol.messages import PROTOCOL_VERSION, Hello, encode_message
from memmesh.storage import PeerScope, Replica

KEY = b"0123456789abcdef0123456789abcdef"
YEAR_MS = 365 * 24 * 3600 * 1000


class HandPeer:
    """A peer driven by hand over a memory stream: a real Session, or raw frames."""

    def __init__(self, stream: trio.abc.Stream, rid: str, fingerprint: bytes) -> None:
        self.stream = stream
        self.session = Session(replica_id=rid, fingerprint=fingerprint,
                               now=trio.current_time(), wall_ms=EPOCH_MS)
        self.received = bytearray()
        self.events: list[ev.Event] = []

    async def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def read(self, seconds: float = 2.0) -> None:
        """Take what arrives for ``seconds`` (virtual), feed it to the session."""
        with trio.move_on_after(seconds):
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    return
                self.received += data
                with contextlib.suppress(Exception):
                    self.session.receive_data(bytes(data), trio.current_time())
                self.events.extend(self.session.events())
                await self.flush()


# ----------------------------------------------------------------- case 5


async def test_a_summary_too_large_for_the_peers_frames_closes_that_link_and_the_node_lives(
        mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    mock_clock.autojump_threshold = 0
    ra, rb = FakeReplica("A" * 64), FakeReplica("B")  # a summary of more than 64 bytes
    ra.write("k", "written at A")
    async with mem_node(ra) as a, mem_node(rb) as b, trio.open_nursery() as nursery:
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(lambda: a.handle_stream(ours, outbound=True))
        # the peer accepts no frame larger than 64 bytes: A's summary cannot reach it
        tiny = Hello(PROTOCOL_VERSION, a.fingerprint, "Z", 0, 8, 64, EPOCH_MS)
        await theirs.send_all(encode_frame(encode_message(tiny), cap=1 << 20))
        with trio.fail_after(60):  # the node hangs up on that peer...
            while await theirs.receive_some(65536):
                pass
        assert a.peers == ()
        assert a.policy.peers["Z"].errors["frame-size"] == 1
        assert any("frame-size" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        connect(nursery, b, a)  # the node keeps serving an honest peer
        await wait_for(lambda: converged([ra, rb]))
        assert a.status().peers[0].replica_id == "B"
        nursery.cancel_scope.cancel()


# ----------------------------------------------------------------- case 9


async def test_a_second_link_under_the_same_id_is_refused_and_never_serves(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    with Replica.open(tmp_path / "alice") as ra, Replica.open(tmp_path / "bob") as rb:
        ra.add("for bob: the meeting moved to noon", user_id="bob")
        ra.add("alice's canary: tangerine-42", user_id="alice")
        empty = rb.sync_summary()
        acl = {"bob-agent": PeerScope(users=frozenset({"bob"}))}
        async with mem_node(ra, acl=acl, acl_default=PeerScope(users=frozenset())) as a, \
                trio.open_nursery() as nursery:
            peers = []
            for _ in range(2):  # bob's agent opens two links under its own id
                ours, theirs = trio.testing.memory_stream_pair()
                nursery.start_soon(lambda s=ours: a.handle_stream(s, outbound=False,
                                                                  peer_id="bob-agent"))
                peer = HandPeer(theirs, "bob-agent", a.fingerprint)
                await peer.flush()
                await peer.read(1.0)
                peers.append(peer)
            first, second = peers
            assert any(isinstance(e, ev.PeerRejected) and e.reason == "duplicate"
                       for e in second.events)
            assert a.peers == ("bob-agent",)
            for peer in peers:  # both ask for everything
                with contextlib.suppress(Exception):
                    peer.session.start_sync(empty, trio.current_time())
                await peer.flush()
                await peer.read(2.0)
            wire = bytes(first.received) + bytes(second.received)
            assert b"the meeting moved to noon" in first.received  # bob's own scope
            assert b"tangerine" not in wire
            assert a.status().rejected_busy == 0
            nursery.cancel_scope.cancel()


# ----------------------------------------------------------------- case 10


async def _tls(port: int, rid: str) -> trio.SSLStream[trio.SocketStream]:
    ctx = ClusterCredentials.create(KEY, rid).client_context()
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    tls = trio.SSLStream(tcp, ctx, server_hostname="memmesh")
    await tls.do_handshake()
    return tls


async def test_handshakes_and_buffers_are_bounded_and_an_honest_peer_still_joins(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cap = 1 << 20
    with Replica.open(tmp_path / "v") as rv, Replica.open(tmp_path / "j") as rj:
        for i in range(50):
            rv.add(f"memory {i} of the victim")
        async with Node(rv, cluster_key=KEY, mdns=False, remember_peers=False,
                        max_handshakes=4, max_buffered=cap) as victim, \
                trio.open_nursery() as nursery:
            silent = [await trio.open_tcp_stream("127.0.0.1", victim.port) for _ in range(20)]
            await wait_for(lambda: victim.status().dropped.get("handshakes", 0) >= 16, 60)
            assert len(victim.policy.handshakes) <= 4
            gate_lines = [r for r in caplog.records if "dropped (handshakes)" in r.getMessage()]
            assert 1 <= len(gate_lines) < 16  # counted one by one, logged in summaries
            hoarders = []
            for i in range(6):  # key holders: HELLO, then most of a 4 MiB frame
                tls = await _tls(victim.port, f"mallory-{i}")
                hello = Hello(PROTOCOL_VERSION, victim.fingerprint, f"mallory-{i}", 0, 8,
                              4 << 20, EPOCH_MS)
                await tls.send_all(encode_frame(encode_message(hello), cap=1 << 20))
                with contextlib.suppress(trio.BrokenResourceError):
                    await tls.send_all(struct.pack(">I", 4 << 20) + b"\x00" * 600_000)
                hoarders.append(tls)
            await wait_for(lambda: victim.status().dropped.get("buffered", 0) >= 3, 60)
            held = sum(pl.held_bytes for pl in victim.policy.links)
            assert held <= cap
            async with Node(rj, cluster_key=KEY, mdns=False, remember_peers=False,
                            seeds=[("127.0.0.1", victim.port)]):
                await wait_for(lambda: rj.state_digest() == rv.state_digest(), 120)
            for s in [*silent, *hoarders]:
                await trio.aclose_forcefully(s)
            nursery.cancel_scope.cancel()


# ----------------------------------------------------------------- clocks


async def test_a_node_ahead_of_its_peer_fences_its_writes_until_its_clock_is_fixed(
        mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    ahead = [YEAR_MS]
    ra = FakeReplica("A", clock=lambda: EPOCH_MS + ahead[0])
    rb = FakeReplica("B")
    async with mem_node(ra) as a, mem_node(rb) as b, trio.open_nursery() as nursery:
        connect(nursery, b, a)
        await wait_for(lambda: ra.write_fence is not None)
        st = a.status()
        assert st.write_fence == ra.write_fence and "ahead" in st.write_fence
        assert abs(st.peers[0].clock_offset_ms + YEAR_MS) < 1000  # type: ignore[operator]
        assert b.status().write_fence is None and rb.write_fence is None  # behind: fine
        with pytest.raises(RuntimeError):
            ra.write("k", "a stamp a year in the future")
        rb.write("k2", "sync goes on while fenced")
        await wait_for(lambda: "sync goes on while fenced" in ra.texts())
        ahead[0] = 0  # NTP fixed the clock: the next round lifts the fence
        await wait_for(lambda: ra.write_fence is None)
        assert a.status().write_fence is None
        nursery.cancel_scope.cancel()


# ----------------------------------------------------------------- link failures


async def test_an_exception_while_applying_closes_that_link_only_and_is_logged(
        mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    mock_clock.autojump_threshold = 0
    ra, rb = FakeReplica("A"), FakeReplica("B")
    rb.write("k", "v")
    calls = []

    def broken(data: bytes) -> object:
        calls.append(data)
        raise ZeroDivisionError("a bug in storage")

    ra.sync_apply = broken  # type: ignore[method-assign]
    async with mem_node(ra) as a, mem_node(rb) as b, trio.open_nursery() as nursery:
        connect(nursery, a, b)
        await wait_for(lambda: a.status().errors.get("internal", 0) >= 1)
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("peer B" in line and "internal" in line and "ZeroDivisionError" in line
                   for line in lines)
        assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)
        assert b.status()  # both nodes alive
        nursery.cancel_scope.cancel()


def test_memmesh_status_shows_the_fence_line_and_the_trouble_counters() -> None:
    import time

    from memmesh.gossip import NodeStatus
    from memmesh.integrations.node import format_status

    status = NodeStatus("A", "127.0.0.1", 7700, True, (), 0, 0, 0, 0, 0,
                        write_fence="this clock is 31536000 s or more ahead of 2 of 3 peers",
                        errors={"frame-size": 1}, dropped={"buffered": 4}).as_dict()
    status["written_at"] = time.time()
    text = format_status(status)
    assert "WRITES FENCED: this clock is 31536000 s" in text
    assert "errors: {'frame-size': 1}" in text and "dropped: {'buffered': 4}" in text
    assert "WRITES FENCED" not in format_status({**status, "write_fence": None})

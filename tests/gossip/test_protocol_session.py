"""The link session driven by hand: handshake, push-pull rounds, flow control, errors."""

from __future__ import annotations

import pytest
from gossip_fakes import FakeReplica

from memmesh.crdt import packb
from memmesh.gossip.protocol import (
    LocalProtocolError,
    RemoteProtocolError,
    Session,
    SessionConfig,
    State,
    encode_frame,
)
from memmesh.gossip.protocol import events as ev
from memmesh.gossip.protocol.driver import _split_frames
from memmesh.gossip.protocol.messages import (
    PROTOCOL_VERSION,
    Ack,
    Changes,
    Hello,
    Push,
    Syn,
    decode_message,
    encode_message,
)

FP = b"cluster-fingerprint"


def pair(cfg: SessionConfig | None = None, **kw: object) -> tuple[Session, Session]:
    a = Session(replica_id="A", fingerprint=FP, now=0.0, config=cfg)
    b = Session(replica_id="B", fingerprint=FP, now=0.0, config=cfg, **kw)  # type: ignore[arg-type]
    return a, b


def shake(a: Session, b: Session) -> None:
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    assert a.state is State.OPEN and b.state is State.OPEN
    assert isinstance(a.next_event(), ev.HandshakeComplete)
    assert isinstance(b.next_event(), ev.HandshakeComplete)


def pulling(cfg: SessionConfig, keys: int) -> tuple[Session, FakeReplica, Session, FakeReplica]:
    """A's pull from B under way over an open link, B holding ``keys`` memories."""
    ra, rb = FakeReplica("A"), FakeReplica("B")
    for i in range(keys):
        rb.write(f"k{i}", f"text number {i}")
    a, b = pair(cfg)
    shake(a, b)
    a.start_sync(ra.sync_summary(), 0.0)
    return a, ra, b, rb


def serve(s: Session, r: FakeReplica, now: float, log: list[ev.Event] | None = None) -> None:
    while (e := s.next_event()) is not None:
        if log is not None:
            log.append(e)
        match e:
            case ev.NeedSummary():
                s.start_sync(r.sync_summary(), now, reply=True)
            case ev.NeedChanges(request=req, summary=summ, max_bytes=mb):
                s.changes_ready(req, r.sync_changes(summ, max_bytes=mb), now)
            case ev.ApplyChanges(n=n, data=data):
                r.sync_apply(data)
                s.applied(n, now)


def run(a: Session, ra: FakeReplica, b: Session, rb: FakeReplica,
        logs: tuple[list[ev.Event], list[ev.Event]] | None = None) -> int:
    """Exchange bytes until both sides are quiet; returns the number of exchanges."""
    for i in range(10_000):
        serve(a, ra, 0.0, logs[0] if logs else None)
        serve(b, rb, 0.0, logs[1] if logs else None)
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            return i
        if da:
            b.receive_data(da, 0.0)
        if db:
            a.receive_data(db, 0.0)
    raise AssertionError("no quiescence")


def test_handshake_opens_both_ends_and_names_the_peer() -> None:
    a, b = pair()
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    assert a.next_event() == ev.HandshakeComplete("B", 0, PROTOCOL_VERSION)
    assert b.next_event() == ev.HandshakeComplete("A", 0, PROTOCOL_VERSION)


def test_wrong_cluster_is_rejected_and_both_ends_close() -> None:
    a = Session(replica_id="A", fingerprint=b"one", now=0.0)
    b = Session(replica_id="B", fingerprint=b"two", now=0.0)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(a.data_to_send(), 0.0)
    assert info.value.reason == "wrong-cluster"
    assert b.state is State.CLOSED
    with pytest.raises(RemoteProtocolError):
        a.receive_data(b.data_to_send(), 0.0)  # b's HELLO is refused in turn
    assert a.state is State.CLOSED


def test_other_protocol_version_is_rejected() -> None:
    b = Session(replica_id="B", fingerprint=FP, now=0.0)
    hello = Hello(99, FP, "A", 0, 8, 1 << 20)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(encode_frame(encode_message(hello), cap=1 << 20), 0.0)
    assert info.value.reason == "version"


def test_replica_id_must_match_the_authenticated_identity() -> None:
    a, b = pair(expected_peer_id="Mallory")
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(a.data_to_send(), 0.0)
    assert info.value.reason == "identity"


def test_a_node_refuses_to_talk_to_itself() -> None:
    a = Session(replica_id="A", fingerprint=FP, now=0.0)
    twin = Session(replica_id="A", fingerprint=FP, now=0.0)
    with pytest.raises(RemoteProtocolError) as info:
        twin.receive_data(a.data_to_send(), 0.0)
    assert info.value.reason == "self"


def test_valid_msgpack_before_the_handshake_is_a_protocol_error() -> None:
    b = Session(replica_id="B", fingerprint=FP, now=0.0,
                config=SessionConfig(retransmit=False))
    b.data_to_send()
    with pytest.raises(RemoteProtocolError):
        b.receive_data(encode_frame(encode_message(Syn(1, b"x", False)), cap=1024), 0.0)
    assert b.state is State.CLOSED
    assert b.data_to_send()  # it says why before the link drops


def test_one_round_is_push_pull() -> None:
    ra, rb = FakeReplica("A"), FakeReplica("B")
    ra.write("k1", "from a")
    rb.write("k2", "from b")
    a, b = pair()
    shake(a, b)
    a.start_sync(ra.sync_summary(), 0.0)
    logs: tuple[list[ev.Event], list[ev.Event]] = ([], [])
    run(a, ra, b, rb, logs)
    assert ra.texts() == rb.texts() == {"from a", "from b"}
    assert any(isinstance(e, ev.SyncCompleted) for e in logs[0])
    assert any(isinstance(e, ev.SyncCompleted) for e in logs[1])  # the reverse half
    assert a.idle and b.idle


def test_large_sync_streams_bounded_chunks_within_the_window() -> None:
    cfg = SessionConfig(window=3, chunk_bytes=400)
    a, ra, b, rb = pulling(cfg, 200)
    in_flight_max = 0
    for _ in range(10_000):
        serve(a, ra, 0.0)
        serve(b, rb, 0.0)
        in_flight_max = max(in_flight_max, b._delivery.in_flight)
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            break
        if da:
            b.receive_data(da, 0.0)
        if db:
            a.receive_data(db, 0.0)
    assert ra.state_digest() == rb.state_digest()
    assert len(ra.applied_blobs) > 10  # many chunks in one round, not one blob
    assert all(len(blob) <= 400 + 200 for blob in ra.applied_blobs)
    assert in_flight_max <= 3


def test_a_busy_peer_refuses_the_pull_but_keeps_the_link() -> None:
    ra, _rb = FakeReplica("A"), FakeReplica("B")
    a, b = pair()
    shake(a, b)
    sid = a.start_sync(ra.sync_summary(), 0.0)
    b.receive_data(a.data_to_send(), 0.0)
    need = b.next_event()
    assert isinstance(need, ev.NeedChanges) and need.first and need.purpose == "serve"
    b.refuse(need.request, "busy")
    a.receive_data(b.data_to_send(), 0.0)
    assert a.next_event() == ev.SyncRejected(sid, "busy")
    assert a.state is State.OPEN and not a.pulling


def test_push_delivers_new_writes_and_priority_jumps_the_queue() -> None:
    cfg = SessionConfig(window=1, chunk_bytes=300)
    ra, rb = FakeReplica("A"), FakeReplica("B")
    a, b = pair(cfg)
    shake(a, b)
    # b learns a's summary through a pull, so it can push afterwards
    a.start_sync(ra.sync_summary(), 0.0)
    run(a, ra, b, rb)
    for i in range(20):
        rb.write(f"bulk{i}", "bulk " * 10)
    assert b.request_push(0.0)
    serve(b, rb, 0.0)  # first bulk frame in flight, window of one is now full
    rb.write("urgent", "priority!", priority=True)
    b.request_push(0.0, priority=True)
    serve(b, rb, 0.0)
    frames: list[set[str]] = []
    for _ in range(1000):
        db = b.data_to_send()
        if db:
            a.receive_data(db, 0.0)
        while (e := a.next_event()) is not None:
            assert isinstance(e, ev.ApplyChanges)
            before = set(ra.keys)
            ra.sync_apply(e.data)
            frames.append(set(ra.keys) - before)
            a.applied(e.n, 0.0)
        da = a.data_to_send()
        if da:
            b.receive_data(da, 0.0)
        serve(b, rb, 0.0)
        if not da and not db:
            break
    assert len(frames) > 3
    assert "urgent" not in frames[0] and "urgent" in frames[1]  # ahead of queued bulk
    assert ra.state_digest() == rb.state_digest()


def test_without_a_known_summary_push_asks_for_a_pull_instead() -> None:
    a, b = pair()
    shake(a, b)
    assert a.request_push(0.0) is False


def test_a_replayed_data_frame_is_applied_once_and_acked_again() -> None:
    a, b = pair()
    shake(a, b)
    # A sends SYN, B answers; capture B's first CHANGES frame and replay it
    rb = FakeReplica("B")
    rb.write("k", "v")
    a.start_sync(FakeReplica("A").sync_summary(), 0.0)
    b.receive_data(a.data_to_send(), 0.0)
    serve(b, rb, 0.0)
    frame = b.data_to_send()
    a.receive_data(frame, 0.0)
    applies = [e for e in a.events() if isinstance(e, ev.ApplyChanges)]
    assert len(applies) == 1
    a.receive_data(frame, 0.0)  # replayed before it was applied: ignored
    assert not [e for e in a.events() if isinstance(e, ev.ApplyChanges)]
    a.applied(applies[0].n, 0.0)
    a.data_to_send()
    a.receive_data(frame, 0.0)  # replayed after: only the ACK is repeated
    assert not [e for e in a.events() if isinstance(e, ev.ApplyChanges)]
    acks = b"".join(encode_frame(encode_message(Ack(n)), cap=1024) for n in (1, 2))
    assert a.data_to_send() == acks


def test_ack_of_a_frame_never_sent_is_a_protocol_error() -> None:
    a, b = pair()
    shake(a, b)
    with pytest.raises(RemoteProtocolError):
        a.receive_data(encode_frame(encode_message(Ack(77)), cap=1024), 0.0)


def test_a_peer_that_overruns_the_window_is_dropped() -> None:
    a, b = pair(SessionConfig(window=2))
    shake(a, b)
    frames = b"".join(
        encode_frame(encode_message(Push(n, packb({"keys": [1]}), False)), cap=1024)
        for n in (1, 2, 3)
    )
    with pytest.raises(RemoteProtocolError):
        a.receive_data(frames, 0.0)


def test_changes_for_a_sync_never_requested_are_refused() -> None:
    a, b = pair()
    shake(a, b)
    bad = Changes(1, 5, 0, b"x", True, 1, False)
    with pytest.raises(RemoteProtocolError):
        a.receive_data(encode_frame(encode_message(bad), cap=1024), 0.0)


def test_local_misuse_raises_local_protocol_error_and_changes_nothing() -> None:
    a, b = pair()
    with pytest.raises(LocalProtocolError):
        a.start_sync(b"s", 0.0)  # not open yet
    shake(a, b)
    a.start_sync(b"s", 0.0)
    with pytest.raises(LocalProtocolError):
        a.start_sync(b"s", 0.0)  # one pull at a time
    with pytest.raises(LocalProtocolError):
        a.applied(12, 0.0)
    with pytest.raises(LocalProtocolError):
        a.changes_ready(99, b"", 0.0)
    with pytest.raises(LocalProtocolError):
        a.close("not-a-reason")
    assert a.state is State.OPEN and a.pulling


def test_handshake_times_out() -> None:
    a = Session(replica_id="A", fingerprint=FP, now=0.0,
                config=SessionConfig(handshake_timeout=3.0, rto=1.0))
    a.data_to_send()
    assert a.next_deadline() == 1.0
    a.handle_timeout(1.0)
    assert a.data_to_send()  # HELLO repeated
    a.handle_timeout(3.0)
    assert a.state is State.CLOSED
    closed = [e for e in a.events() if isinstance(e, ev.ConnectionClosed)]
    assert closed and closed[0].reason == "timeout"


def test_unacknowledged_frames_are_retransmitted_then_the_link_gives_up() -> None:
    cfg = SessionConfig(rto=1.0, max_retries=2, keepalive=100, idle_timeout=100)
    ra, rb = FakeReplica("A"), FakeReplica("B")
    rb.write("k", "v")
    a, b = pair(cfg)
    shake(a, b)
    a.start_sync(ra.sync_summary(), 0.0)
    b.receive_data(a.data_to_send(), 0.0)
    serve(b, rb, 0.0)
    first = b.data_to_send()
    assert b.next_deadline() == 1.0
    b.handle_timeout(1.0)
    again = _split_frames(b.data_to_send())
    assert again and set(again) <= set(_split_frames(first))  # the same frames again
    b.handle_timeout(2.0)
    b.handle_timeout(3.0)
    assert b.state is State.CLOSED


def test_a_silent_peer_times_out_and_an_idle_link_pings() -> None:
    cfg = SessionConfig(keepalive=1.0, idle_timeout=5.0)
    a, b = pair(cfg)
    shake(a, b)
    a.handle_timeout(1.0)
    b.receive_data(a.data_to_send(), 1.0)  # a PING
    a.receive_data(b.data_to_send(), 1.0)  # the PONG keeps a alive
    a.handle_timeout(5.5)
    assert a.state is State.OPEN
    a.handle_timeout(6.1)
    assert a.state is State.CLOSED


def test_a_push_carries_only_this_replicas_own_writes_never_relayed_ones() -> None:
    ra, rb, rc = FakeReplica("A"), FakeReplica("B"), FakeReplica("C")
    rc.write("theirs", "written at C")
    ra.sync_apply(rc.sync_changes(ra.sync_summary()))  # A holds C's write
    a, b = pair()
    shake(a, b)
    b.start_sync(rb.sync_summary(), 0.0)  # A learns B's (empty) summary
    a.receive_data(b.data_to_send(), 0.0)
    serve_b = next(e for e in a.events() if isinstance(e, ev.NeedChanges))
    a.refuse(serve_b.request)  # serve nothing: only the push below may carry data
    ra.write("mine", "written at A")
    assert a.request_push(0.0, local_summary=ra.sync_summary())
    need = a.next_event()
    assert isinstance(need, ev.NeedChanges) and need.purpose == "push"
    data = ra.sync_changes(need.summary, max_bytes=need.max_bytes)
    assert b"written at A" in data and b"written at C" not in data
    # without the local summary the same push would relay C's write too
    assert b"written at C" in ra.sync_changes(a.peer_summary or b"", max_bytes=10**6)


def test_on_a_lossy_transport_a_lost_hello_is_repeated_and_overtaking_frames_dropped() -> None:
    a, b = pair(SessionConfig(rto=1.0))
    hello_a = a.data_to_send()
    b.receive_data(hello_a, 0.0)  # b is open; b's HELLO to a is lost
    assert b.state is State.OPEN
    b.data_to_send()
    b.start_sync(b"summary", 0.0)
    a.receive_data(b.data_to_send(), 0.0)  # b's SYN overtook b's HELLO: dropped
    assert a.state is State.HANDSHAKE and a.next_event() is None
    a.handle_timeout(1.0)  # a repeats its HELLO...
    b.receive_data(a.data_to_send(), 1.0)
    a.receive_data(b.data_to_send(), 1.0)  # ...and b answers with its own
    assert a.state is State.OPEN
    b.receive_data(hello_a, 1.5)  # a network duplicate within the rto: not answered
    assert b.data_to_send() == b""
    a.handle_timeout(6.0)
    ping = a.data_to_send()
    assert ping
    b.receive_data(ping, 6.0)  # a spoke: b knows a has its HELLO
    b.data_to_send()
    b.receive_data(hello_a, 9.0)
    assert b.state is State.OPEN and b.data_to_send() == b""


def test_chunks_of_a_pull_are_handed_over_in_order_even_when_they_arrive_reordered() -> None:
    cfg = SessionConfig(window=4, chunk_bytes=300)
    a, ra, b, rb = pulling(cfg, 40)
    b.receive_data(a.data_to_send(), 0.0)
    serve(b, rb, 0.0)
    frames = _split_frames(b.data_to_send())
    changes = [f for f in frames if decode_message(f[4:]).__class__ is Changes]
    assert len(changes) >= 3
    for frame in reversed(changes):  # the last chunk first
        a.receive_data(frame, 0.0)
    first = a.events()
    assert [type(e) for e in first] == [ev.ApplyChanges]  # only chunk 0 so far
    order = []
    pending = first
    while pending:
        e = pending.pop(0)
        assert isinstance(e, ev.ApplyChanges)
        order.append(decode_message(
            next(f for f in changes if decode_message(f[4:]).n == e.n)[4:]).index)
        ra.sync_apply(e.data)
        a.applied(e.n, 0.0)
        pending += [x for x in a.events() if isinstance(x, ev.ApplyChanges)]
    assert order == sorted(order) == list(range(len(changes)))


def test_frames_are_capped_small_until_the_peer_said_hello() -> None:
    b = Session(replica_id="B", fingerprint=FP, now=0.0)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(b"\x00\x01\x00\x00", 0.0)  # announces 64 KiB before any HELLO
    assert info.value.reason == "frame-size"


def test_a_partial_frame_that_stops_arriving_closes_the_link() -> None:
    cfg = SessionConfig(frame_timeout=2.0, keepalive=100, idle_timeout=100)
    a, b = pair(cfg)
    shake(a, b)
    a.receive_data(b"\x00\x01\x00\x00" + b"x" * 1000, 1.0)  # 1,000 of 65,536 bytes
    assert a.buffered == 1000 and a.next_deadline() == 3.0
    a.handle_timeout(3.0)
    assert a.state is State.CLOSED and a.close_reason == "timeout"
    assert a.buffered == 0


def test_a_hello_of_an_older_version_is_refused_as_version() -> None:
    b = Session(replica_id="B", fingerprint=FP, now=0.0)
    old = packb([1, 1, FP, "A", 0, 8, 1 << 20])  # version 1: six fields, no wall clock
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(encode_frame(old, cap=1 << 20), 0.0)
    assert info.value.reason == "version"


def test_hello_carries_the_wall_clock_to_the_handshake_event() -> None:
    a = Session(replica_id="A", fingerprint=FP, now=0.0, wall_ms=1_700_000_000_123)
    b = Session(replica_id="B", fingerprint=FP, now=0.0)
    b.receive_data(a.data_to_send(), 0.0)
    e = b.next_event()
    assert isinstance(e, ev.HandshakeComplete) and e.wall_ms == 1_700_000_000_123

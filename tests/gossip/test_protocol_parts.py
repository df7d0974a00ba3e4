"""The session's three parts on their own: the handshake table, the delivery window and
the in-order release of a pull's chunks."""

from __future__ import annotations

import pytest

from memmesh.gossip.protocol import (
    FrameDecoder,
    Phase,
    RemoteProtocolError,
    Session,
    SessionConfig,
    encode_frame,
)
from memmesh.gossip.protocol._delivery import Arrival, DataFrame, Delivery, InOrder
from memmesh.gossip.protocol._handshake import TRANSITIONS
from memmesh.gossip.protocol._outbox import Outbox
from memmesh.gossip.protocol.messages import (
    Ack,
    Hello,
    Message,
    Ping,
    Push,
    Syn,
    decode_message,
    encode_message,
)

FP = b"cluster-fingerprint"


def sent(out: Outbox) -> list[Message]:
    return _decode(out.take())


def test_before_the_hello_only_hello_reject_and_bye_are_admitted() -> None:
    admitted = {t.__name__ for t in TRANSITIONS[Phase.AWAIT_HELLO]}
    assert admitted == {"Hello", "Reject", "Bye"}
    assert TRANSITIONS[Phase.CLOSED] == {}
    # both open phases admit the same messages; only HELLO_IN is left by them
    assert set(TRANSITIONS[Phase.HELLO_IN]) == set(TRANSITIONS[Phase.ESTABLISHED])
    assert set(TRANSITIONS[Phase.ESTABLISHED].values()) <= {Phase.ESTABLISHED, Phase.CLOSED}


def test_the_peer_speaking_after_its_hello_ends_our_hello_answers() -> None:
    a = Session(replica_id="A", fingerprint=FP, now=0.0, config=SessionConfig(rto=1.0))
    b = Session(replica_id="B", fingerprint=FP, now=0.0, config=SessionConfig(rto=1.0))
    hello_b = b.data_to_send()
    a.data_to_send()
    assert a.phase is Phase.AWAIT_HELLO
    a.receive_data(hello_b, 0.0)
    assert a.phase is Phase.HELLO_IN
    a.receive_data(hello_b, 2.0)  # repeated after rto: b may lack ours, answered
    assert [type(m) for m in _decode(a.data_to_send())] == [Hello]
    a.receive_data(_frame(Ping(1)), 2.5)
    assert a.phase is Phase.ESTABLISHED
    a.data_to_send()
    a.receive_data(hello_b, 9.0)  # b spoke: it has ours, a repeat is a duplicate
    assert a.data_to_send() == b""


def test_an_open_frame_before_the_hello_is_an_error_over_a_stream() -> None:
    a = Session(replica_id="A", fingerprint=FP, now=0.0,
                config=SessionConfig(retransmit=False))
    with pytest.raises(RemoteProtocolError):
        a.receive_data(_frame(Syn(1, b"s", False)), 0.0)
    assert a.phase is Phase.CLOSED


def test_delivery_sends_within_the_window_and_resends_an_overdue_frame() -> None:
    out = Outbox(cap=4096, now=0.0)
    d: Delivery[None] = Delivery(out, SessionConfig(window=4, rto=1.0, max_retries=1))
    d.open(peer_window=2)
    for i in range(3):
        d.enqueue(DataFrame(0, data=b"x%d" % i))
    d.pump(0.0)
    assert [m.n for m in sent(out) if isinstance(m, Push)] == [1, 2]
    assert d.in_flight == 2 and d.queued == 1
    assert d.ack(1, 0.5)
    assert [m.n for m in sent(out) if isinstance(m, Push)] == [3]
    assert not d.ack(1, 0.5)  # a duplicate ACK changes nothing
    assert d.retransmit(1.0)  # frame 2 is overdue: resent once
    assert [m.n for m in sent(out) if isinstance(m, Push)] == [2]
    assert not d.retransmit(2.0)  # out of retries: the link must be given up


def test_delivery_hands_each_frame_number_over_once_and_acks_repeats() -> None:
    out = Outbox(cap=4096, now=0.0)
    d: Delivery[str] = Delivery(out, SessionConfig(window=2))
    assert d.arrive(1, 5, "one", 0.0) is Arrival.NEW
    assert d.arrive(1, 5, "one", 0.0) is Arrival.PENDING
    assert sent(out) == []
    assert d.applied(1, 0.0) == "one"
    assert sent(out) == [Ack(1)]
    assert d.arrive(1, 5, "one", 0.0) is Arrival.REPEAT  # our ACK was lost
    assert sent(out) == [Ack(1)]
    assert d.arrive(2, 0, "empty", 0.0) is Arrival.EMPTY
    assert sent(out) == [Ack(2)] and d.idle
    d.arrive(3, 1, "a", 0.0)
    d.arrive(4, 1, "b", 0.0)
    with pytest.raises(RemoteProtocolError):
        d.arrive(5, 1, "c", 0.0)  # beyond our window of 2


def test_a_held_chunk_is_released_only_after_every_chunk_before_it() -> None:
    order = InOrder()
    assert order.ready(0) and not order.ready(1)
    order.hold(2, 12, b"two")
    order.hold(1, 11, b"one")
    assert order.holds(12) and not order.holds(10)
    assert order.applied(0) == [(11, b"one")]  # 2 still waits for 1
    assert order.applied(1) == [(12, b"two")]
    assert not order.complete(3)
    order.applied(2)
    assert order.complete(3)


def _frame(msg: Message) -> bytes:
    return encode_frame(encode_message(msg), cap=4096)


def _decode(data: bytes) -> list[Message]:
    return [decode_message(body) for body in FrameDecoder(4096).feed(data)]

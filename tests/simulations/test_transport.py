"""The simulated stream: in-order exactly-once bytes over a lossy network, resets."""

from __future__ import annotations

from memmesh.simulations.engine import EventLoop
from memmesh.simulations.network import Network, NetworkConfig
from memmesh.simulations.transport import Connection, Transport, split_frames


def _pair(config: NetworkConfig, mode: str = "tcp") -> tuple[EventLoop, Transport, Network]:
    loop = EventLoop()
    holder: list[Transport] = []
    net = Network(loop, config, 3, deliver=lambda s, d, p: holder[0].deliver(s, d, p))
    transport = Transport(loop, net, mode=mode)
    holder.append(transport)
    return loop, transport, net


def _dial(transport: Transport) -> tuple[Connection, list[str]]:
    """``a``'s connection to a ``b`` that accepts and ignores it, and the list the
    reasons of ``a``'s end closing go to."""
    transport.listen("b", lambda conn: None)
    conn = transport.connect("a", "b")
    reasons: list[str] = []
    conn.on_close = reasons.append
    return conn, reasons


def test_stream_survives_loss_duplication_and_reordering() -> None:
    loop, transport, _ = _pair(NetworkConfig(loss=0.3, duplicate=0.2, reorder=0.3))
    received = bytearray()
    accepted: list[Connection] = []

    def accept(conn: Connection) -> None:
        accepted.append(conn)
        conn.on_data = received.extend

    transport.listen("b", accept)
    conn = transport.connect("a", "b")
    chunks = [bytes([i]) * (i + 1) for i in range(60)]
    for chunk in chunks:
        conn.send(chunk)
    loop.run(60_000_000)
    assert bytes(received) == b"".join(chunks)
    assert transport.retransmissions > 0


def test_connection_to_an_unreachable_node_times_out() -> None:
    loop, transport, net = _pair(NetworkConfig())
    net.partition([["a"], ["b"]])
    conn, reasons = _dial(transport)
    conn.send(b"hello")
    loop.run(600_000_000)
    assert reasons == ["timeout"] and not conn.open


def test_crashed_peer_is_reset_when_it_comes_back() -> None:
    loop, transport, _ = _pair(NetworkConfig())
    conn, reasons = _dial(transport)
    conn.send(b"one")
    loop.run(1_000_000)
    transport.unlisten("b")  # crash: b forgets the connection
    transport.listen("b", lambda c: None)  # restart
    conn.send(b"two")
    loop.run(10_000_000)
    assert reasons == ["reset"]


def test_graceful_close_reaches_the_peer() -> None:
    loop, transport, _ = _pair(NetworkConfig(loss=0.2))
    ends: list[Connection] = []
    closed: list[str] = []

    def accept(conn: Connection) -> None:
        ends.append(conn)
        conn.on_close = closed.append

    transport.listen("b", accept)
    conn = transport.connect("a", "b")
    conn.send(b"x")
    conn.close()
    loop.run(60_000_000)
    assert closed == ["fin"]


def test_split_frames_cuts_length_prefixed_frames() -> None:
    data = (3).to_bytes(4, "big") + b"abc" + (1).to_bytes(4, "big") + b"z"
    assert split_frames(data) == [data[:7], data[7:]]

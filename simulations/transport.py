"""A minimal reliable byte stream over the lossy simulated network (TCP's job, not gossip's).

memmesh's gossip runs over TCP (inside TLS), so the protocol core never sees a lost,
duplicated or reordered byte: it sees delay, and connections that break. This module
gives the simulated nodes that same service so the faults of ``network.py`` reach the
protocol the way they would on a real host:

* data is cut into numbered segments (at most ``mss`` bytes); the receiver delivers them
  in order, buffers early ones, drops duplicates, and answers each with a cumulative ACK;
* the sender retransmits the oldest unacknowledged segment when its retransmission timer
  fires (initial RTO 200 ms, Linux's minimum, doubled on every retry as in RFC 6298) and
  resets the connection after ``max_retries`` retries in a row;
* ``close()`` sends a FIN in sequence after the data; a crash leaves no trace, and a
  segment for a connection the receiver does not know is answered with a RST.

Loss therefore costs time and retransmitted bytes, duplication costs bytes, reordering
costs head-of-line delay, and partitions and crashes end connections after a timeout;
every such byte is counted on the wire. There is no congestion control: a gossip link
moves a few kilobytes per round.

The other mode, ``frames``, has no reliability at all: every protocol frame travels as
its own packet and the faults hit the frames themselves (loss, duplicates, frames
overtaking each other), which is what the protocol core's own frame numbering and
retransmission (``SessionConfig.retransmit``) exist for. It is the harsher test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .engine import US_PER_MS, EventLoop, Timer
from .network import Network, NodeId

HEADER_BYTES = 40  # IPv4 + TCP headers of one segment
MODES = ("tcp", "frames")


@dataclass(frozen=True, slots=True)
class TransportConfig:
    mss: int = 64 * 1024
    rto_ms: float = 200.0
    max_rto_ms: float = 10_000.0
    max_retries: int = 6


@dataclass(frozen=True, slots=True)
class Segment:
    """One packet of a connection: data (``seq`` >= 1), ``fin``, ``ack``, ``rst``, or in
    ``frames`` mode one protocol ``frame``."""

    conn: int
    kind: str  # "data" | "fin" | "ack" | "rst" | "frame"
    seq: int = 0
    data: bytes = b""

    @property
    def size(self) -> int:
        return HEADER_BYTES + len(self.data)


@dataclass(slots=True)
class _Unacked:
    seq: int
    segment: Segment


class Connection:
    """One end of a simulated reliable stream between ``local`` and ``remote``.

    The owner sets ``on_data(bytes)`` and ``on_close(reason)`` (reason: "fin", "reset",
    "timeout"); both run inside the event loop. ``send`` and ``close`` never block.
    """

    def __init__(self, transport: Transport, conn: int, local: NodeId, remote: NodeId) -> None:
        self.transport = transport
        self.conn = conn
        self.local = local
        self.remote = remote
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_close: Callable[[str], None] = lambda reason: None
        self.open = True
        self._next_seq = 1
        self._unacked: list[_Unacked] = []
        self._expected = 1
        self._early: dict[int, Segment] = {}
        self._timer: Timer | None = None
        self._retries = 0
        self._rto_us = round(transport.config.rto_ms * US_PER_MS)
        self._fin_sent = False

    # -- the owner's side -------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not self.open or self._fin_sent or not data:
            return
        mss = self.transport.config.mss
        for start in range(0, len(data), mss):
            self._queue(Segment(self.conn, "data", self._next_seq, data[start : start + mss]))
        self.transport.app_bytes(self.local, self.remote, len(data))

    def close(self) -> None:
        """Graceful close: a FIN delivered after all data sent so far."""
        if self.open and not self._fin_sent:
            self._fin_sent = True
            self._queue(Segment(self.conn, "fin", self._next_seq))

    def abort(self, reason: str = "reset", *, notify_peer: bool = True) -> None:
        """Drop the connection now; the peer gets a RST unless this is a crash."""
        if not self.open:
            return
        self._shutdown()
        if notify_peer:
            self.transport.emit(self.local, self.remote, Segment(self.conn, "rst"))
        self.on_close(reason)

    # -- internals --------------------------------------------------------------------

    def _queue(self, segment: Segment) -> None:
        self._next_seq += 1
        self._unacked.append(_Unacked(segment.seq, segment))
        self.transport.emit(self.local, self.remote, segment)
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        self._timer = self.transport.loop.call_later(self._rto_us, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if not self.open or not self._unacked:
            return
        cfg = self.transport.config
        self._retries += 1
        if self._retries > cfg.max_retries:
            self.abort("timeout")
            return
        self._rto_us = min(2 * self._rto_us, round(cfg.max_rto_ms * US_PER_MS))
        self.transport.retransmissions += 1
        self.transport.emit(self.local, self.remote, self._unacked[0].segment)
        self._arm()

    def _shutdown(self) -> None:
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unacked.clear()
        self._early.clear()
        self.transport.forget(self)

    def receive(self, segment: Segment) -> None:
        if not self.open:
            return
        if segment.kind == "rst":
            self._shutdown()
            self.on_close("reset")
            return
        if segment.kind == "ack":
            self._on_ack(segment.seq)
            return
        # data or fin: deliver in order, hold early ones, ignore duplicates
        if segment.seq >= self._expected:
            self._early[segment.seq] = segment
        while self.open and self._expected in self._early:
            seg = self._early.pop(self._expected)
            self._expected += 1
            if seg.kind == "fin":
                self.transport.emit(self.local, self.remote, Segment(self.conn, "ack", seg.seq))
                self._shutdown()
                self.on_close("fin")
                return
            self.on_data(seg.data)
        if self.open:
            self.transport.emit(
                self.local, self.remote, Segment(self.conn, "ack", self._expected - 1)
            )

    def _on_ack(self, upto: int) -> None:
        before = len(self._unacked)
        self._unacked = [u for u in self._unacked if u.seq > upto]
        if len(self._unacked) == before:
            return
        self._retries = 0
        self._rto_us = round(self.transport.config.rto_ms * US_PER_MS)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unacked:
            self._arm()
        elif self._fin_sent:
            self._shutdown()
            self.on_close("fin")


def split_frames(data: bytes) -> list[bytes]:
    """Cut a protocol byte stream into its length-prefixed frames (4-byte header)."""
    out: list[bytes] = []
    i = 0
    while i + 4 <= len(data):
        end = i + 4 + int.from_bytes(data[i : i + 4], "big")
        out.append(data[i:end])
        i = end
    if i < len(data):
        out.append(data[i:])
    return out


class FrameConnection(Connection):
    """``frames`` mode: each protocol frame is one unreliable packet; FIN is best effort."""

    def send(self, data: bytes) -> None:
        if not self.open or not data:
            return
        for frame in split_frames(data):
            self.transport.emit(self.local, self.remote, Segment(self.conn, "frame", 1, frame))
        self.transport.app_bytes(self.local, self.remote, len(data))

    def close(self) -> None:
        if self.open:
            self.transport.emit(self.local, self.remote, Segment(self.conn, "fin", 1))
            self._shutdown()

    def receive(self, segment: Segment) -> None:
        if not self.open:
            return
        if segment.kind in ("fin", "rst"):
            self._shutdown()
            self.on_close("fin" if segment.kind == "fin" else "reset")
        elif segment.kind == "frame":
            self.on_data(segment.data)


Accept = Callable[[Connection], None]


@dataclass(slots=True)
class TransportStats:
    connections: int = 0
    resets_sent: int = 0


class Transport:
    """All connections of a run, on top of one ``Network``.

    ``listen(node, accept)`` makes ``node`` accept connections; ``unlisten(node)`` (a
    crash) forgets every connection end of that node without telling anyone.
    ``on_app_bytes(src, dst, n)`` counts payload bytes handed to ``send``.
    """

    def __init__(
        self,
        loop: EventLoop,
        network: Network,
        config: TransportConfig | None = None,
        on_app_bytes: Callable[[NodeId, NodeId, int], None] | None = None,
        *,
        mode: str = "tcp",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"transport mode must be one of {MODES}")
        self.mode = mode
        self._cls: type[Connection] = Connection if mode == "tcp" else FrameConnection
        self.loop = loop
        self.network = network
        self.config = config or TransportConfig()
        self._on_app_bytes = on_app_bytes
        self._ends: dict[NodeId, dict[int, Connection]] = {}  # node -> conn id -> end
        self._listeners: dict[NodeId, Accept] = {}
        self._next_conn = 1
        # connections that ended: a late duplicate of their first packet must not open a
        # phantom connection (TCP's TIME_WAIT serves the same purpose)
        self._closed: set[int] = set()
        self.retransmissions = 0
        self.stats = TransportStats()

    def app_bytes(self, src: NodeId, dst: NodeId, n: int) -> None:
        if self._on_app_bytes is not None:
            self._on_app_bytes(src, dst, n)

    def listen(self, node: NodeId, accept: Accept) -> None:
        self._listeners[node] = accept

    def unlisten(self, node: NodeId) -> None:
        """The node is gone: its connection ends vanish silently (a crash)."""
        self._listeners.pop(node, None)
        for end in list(self._ends.get(node, {}).values()):
            end.abort("crash", notify_peer=False)

    def connect(self, local: NodeId, remote: NodeId) -> Connection:
        conn = self._cls(self, self._next_conn, local, remote)
        self._next_conn += 1
        self.stats.connections += 1
        self._ends.setdefault(local, {})[conn.conn] = conn
        return conn

    def forget(self, conn: Connection) -> None:
        ends = self._ends.get(conn.local)
        if ends is not None:
            ends.pop(conn.conn, None)
        self._closed.add(conn.conn)

    def emit(self, src: NodeId, dst: NodeId, segment: Segment) -> None:
        self.network.send(src, dst, segment, segment.size)

    def deliver(self, src: NodeId, dst: NodeId, packet: object) -> None:
        """Network callback: hand an arriving segment to its connection end."""
        assert isinstance(packet, Segment)
        ends = self._ends.get(dst)
        end = None if ends is None else ends.get(packet.conn)
        if end is not None:
            end.receive(packet)
            return
        # the first packet seen of a connection opens it, whichever segment it is (a SYN
        # handshake would cost one round trip more; early segments are buffered anyway)
        opening = packet.kind in ("frame", "data")
        if opening and dst in self._listeners and packet.conn not in self._closed:
            conn = self._cls(self, packet.conn, dst, src)
            self._ends.setdefault(dst, {})[packet.conn] = conn
            self._listeners[dst](conn)
            if conn.open:
                conn.receive(packet)
            return
        if packet.kind in ("data", "fin", "frame") and dst in self._listeners:
            self.stats.resets_sent += 1
            self.emit(dst, src, Segment(packet.conn, "rst"))


__all__ = ["MODES", "Connection", "FrameConnection", "Segment", "Transport", "TransportConfig"]

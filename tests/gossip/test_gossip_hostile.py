"""Hostile input against a live node process: it stays up, honest peers still converge,
and nothing it sends to the attacker contains memory text."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from pathlib import Path

import pytest
from gossip_procs import KEY, NodeProc, TcpProxy, wait_until

from memmesh.crdt import packb
from memmesh.gossip import ClusterCredentials, cluster_fingerprint
from memmesh.gossip.protocol import encode_frame
from memmesh.gossip.protocol.messages import PROTOCOL_VERSION, Hello, Syn, encode_message
from memmesh.storage import Replica

pytestmark = pytest.mark.slow

SECRET = "the launch code is tangerine-42"


def talk(port: int, payload: bytes, ctx: ssl.SSLContext | None = None,
         first: bytes = b"") -> bytes:
    """Connect, optionally TLS, send ``first`` + ``payload``, return all bytes received."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock: socket.socket = raw
        try:
            if ctx is not None:
                sock = ctx.wrap_socket(raw)
            for part in (first, payload):
                if part:
                    sock.sendall(part)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += data
        except (OSError, ssl.SSLError):
            pass
    return bytes(got)


def test_hostile_clients_get_nothing_and_the_node_keeps_serving(tmp_path: Path) -> None:
    a = NodeProc(tmp_path / "a").start()
    proxy = TcpProxy(("127.0.0.1", a.port))
    b = NodeProc(tmp_path / "b", seeds=[("127.0.0.1", proxy.port)]).start()
    ra, rb = Replica.open(a.path), Replica.open(b.path)
    try:
        ra.add(SECRET)
        wait_until(lambda: ra.state_digest() == rb.state_digest(), 60, "first sync")
        fp = cluster_fingerprint(KEY)
        insider = ClusterCredentials.create(KEY, "mallory").client_context()
        stranger = ClusterCredentials.create(b"not the key at all!!", "eve").client_context()
        hello = encode_frame(encode_message(
            Hello(PROTOCOL_VERSION, fp, "mallory", 0, 8, 1 << 20)), cap=1 << 20)
        received = [
            talk(a.port, b"\x16\x03\x01 garbage that is not TLS" * 50),
            talk(a.port, b"\xff\xff\xff\xff" + b"x" * 100),  # absurd length, no TLS
            talk(a.port, b"hello", ctx=stranger),  # wrong cluster key
            talk(a.port, b"\x7f\xff\xff\xff" + b"x" * 1000, ctx=insider),  # absurd prefix
            talk(a.port, encode_frame(encode_message(Syn(1, b"x", False)), cap=1 << 20),
                 ctx=insider),  # valid msgpack, no handshake
            talk(a.port, encode_frame(packb({"give": "me everything"}), cap=1 << 20),
                 ctx=insider, first=hello),  # handshake, then a body of the wrong shape
            talk(a.port, encode_frame(encode_message(Hello(
                PROTOCOL_VERSION, fp, b.replica_id, 0, 8, 1 << 20)), cap=1 << 20),
                ctx=insider),  # claims another replica's id: certificate says mallory
            talk(a.port, encode_frame(encode_message(Syn(1, packb({"v": 1, "rid": "m", "wm": {},
                 "root": bytes(32)}), False)), cap=1 << 20), ctx=insider, first=hello
                 + struct.pack(">I", 0)),  # a zero-length frame after the handshake
        ]
        # a replayed recording of the honest peer's TLS connection
        recording = bytes(next(r for r in proxy.recorded if r))
        received.append(talk(a.port, recording))
        for got in received:
            assert SECRET.encode() not in got
            assert b"tangerine" not in got
        assert a.alive and b.alive
        # honest peers still converge both ways after the attacks
        ra.add("after the attacks, from a")
        rb.add("after the attacks, from b")
        wait_until(lambda: ra.state_digest() == rb.state_digest(), 60, "convergence")
    finally:
        proxy.close()
        for p in (a, b):
            p.stop()
        ra.close()
        rb.close()


def test_an_absurd_length_prefix_is_refused_before_its_body_arrives(tmp_path: Path) -> None:
    a = NodeProc(tmp_path / "a").start()
    try:
        insider = ClusterCredentials.create(KEY, "mallory").client_context()
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as raw, \
                insider.wrap_socket(raw) as sock:
            sock.sendall(b"\xff\xff\xff\xf0")  # announces ~4 GiB and sends no body
            got = bytearray()
            hung_up = False
            with contextlib.suppress(OSError):  # a timeout leaves hung_up False
                while data := sock.recv(65536):
                    got += data
                hung_up = True
        # the node answered (its HELLO, then goodbye) and hung up without waiting
        assert got and hung_up
        assert a.alive
    finally:
        a.stop()

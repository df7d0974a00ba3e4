"""Saying what is wrong: refused handshakes and unreachable seeds in the log, each seed's
state and last error in ``node.status()``, node-level bytes that only grow."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from memmesh.gossip import Node
from memmesh.gossip._peers import at_doubling
from memmesh.storage import Replica

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"another key, another cluster!!!!"


async def wait_for(cond: Callable[[], object], timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.01)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def warnings(caplog: pytest.LogCaptureFixture, *needles: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and all(n in r.getMessage() for n in needles)]


async def test_a_wrong_cluster_key_is_named_at_warning_on_both_sides_with_the_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memmesh")
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        async with Node(ra, cluster_key=KEY, mdns=False) as a, \
                Node(rb, cluster_key=OTHER_KEY, mdns=False, backoff=(0.05, 0.2),
                     seeds=[("127.0.0.1", a.port)]):
            seed = f"seed 127.0.0.1:{a.port}: refused (TLS handshake: wrong-key: its " \
                   f"certificate is not signed by this cluster's CA: it holds another " \
                   f"cluster key)"
            await wait_for(lambda: warnings(caplog, seed)
                           and warnings(caplog, "TLS handshake refused (wrong-key)"))
            (server,) = warnings(caplog, "TLS handshake refused (wrong-key)")[:1]
            assert server.startswith("peer 127.0.0.1:") and \
                server.endswith("it refused our certificate: it holds another cluster key")


async def test_an_unreachable_seed_is_logged_once_per_backoff_doubling(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memmesh")
    port = closed_port()
    with Replica.open(tmp_path / "a") as ra:
        async with Node(ra, cluster_key=KEY, mdns=False, backoff=(0.001, 0.002),
                        seeds=[("127.0.0.1", port)]) as a:
            record = a.dialer.records[("127.0.0.1", port)]
            await wait_for(lambda: record.failures >= 20)
            failures = record.failures
    lines = warnings(caplog, f"seed 127.0.0.1:{port}: unreachable (Connection refused)")
    counts = [int(line.split("; ")[1].split()[0]) for line in lines]
    assert counts == [n for n in range(1, failures + 1) if at_doubling(n)][:len(counts)]
    assert counts[:5] == [1, 2, 4, 8, 16]


async def test_status_shows_each_seed_with_its_state_peer_and_last_error(
        tmp_path: Path) -> None:
    dead = closed_port()
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb, \
            Replica.open(tmp_path / "c") as rc:
        ra.add("seen by b")
        async with Node(ra, cluster_key=KEY, mdns=False) as a, \
                Node(rc, cluster_key=OTHER_KEY, mdns=False) as c, \
                Node(rb, cluster_key=KEY, mdns=False, backoff=(0.05, 0.2),
                     seeds=[("127.0.0.1", a.port), ("127.0.0.1", dead),
                            ("127.0.0.1", c.port)]) as b:
            def seeds() -> dict[int, dict[str, object]]:
                return {s["address"][1]: s for s in b.status().as_dict()["seeds"]}

            await wait_for(lambda: seeds()[a.port]["lag"] == 0
                           and seeds()[dead]["failures"] and seeds()[c.port]["failures"])
            live, gone, wrong = seeds()[a.port], seeds()[dead], seeds()[c.port]
    assert live["state"] == "connected" and live["peer_id"] == ra.replica_id
    assert live["bytes_in"] > 0 and live["last_contact"] is not None
    assert gone["state"] == "unreachable" and gone["last_error"] == "Connection refused"
    assert gone["peer_id"] is None and gone["last_contact"] is None
    assert wrong["state"] == "refused" and "wrong-key" in str(wrong["last_error"])


async def test_node_bytes_in_and_out_never_go_down_when_a_peer_leaves(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        for i in range(20):
            rb.add(f"memory {i}")
        async with Node(ra, cluster_key=KEY, mdns=False) as a:
            async with Node(rb, cluster_key=KEY, mdns=False, seeds=[("127.0.0.1", a.port)]):
                await wait_for(lambda: ra.state_digest() == rb.state_digest())
                await wait_for(lambda: a.status().bytes_in > 0)
                during = a.status()
            await wait_for(lambda: not a.peers and not a._links)  # the link is gone
            after = a.status()
    assert after.bytes_in >= during.bytes_in > 0
    assert after.bytes_out >= during.bytes_out > 0


async def test_a_seed_that_comes_back_after_a_logged_failure_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memmesh")
    port = closed_port()
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        async with Node(rb, cluster_key=KEY, mdns=False, backoff=(0.02, 0.1),
                        seeds=[("127.0.0.1", port)]) as b:
            await wait_for(lambda: warnings(caplog, f"seed 127.0.0.1:{port}: unreachable"))
            async with Node(ra, cluster_key=KEY, mdns=False, port=port):
                await wait_for(lambda: b.peers == (ra.replica_id,))
                await wait_for(lambda: warnings(caplog, "connected to peer"))
                record = b.dialer.records[("127.0.0.1", port)]
                assert record.failures == 0
    (line,) = warnings(caplog, "connected to peer")
    assert line.startswith(f"seed 127.0.0.1:{port} ({ra.replica_id}): connected to peer "
                           f"{ra.replica_id} after ")

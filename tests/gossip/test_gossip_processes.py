"""Real TCP between node processes on 127.0.0.1: seeds, mDNS, partitions, kill -9."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from gossip_procs import NodeProc, TcpProxy, wait_until

from memmesh._cli import main as cli_main
from memmesh.gossip._peers import load_peers
from memmesh.integrations.node import STATUS_FILE, read_status
from memmesh.storage import Replica

pytestmark = pytest.mark.slow


@pytest.fixture
def procs() -> Iterator[list[NodeProc]]:
    started: list[NodeProc] = []
    yield started
    for p in started:
        p.stop()


def digests(replicas: list[Replica]) -> set[str]:
    return {r.state_digest() for r in replicas}


@contextlib.contextmanager
def replicas_of(*nodes: NodeProc) -> Iterator[list[Replica]]:
    """The nodes' replicas, opened beside the node processes (LMDB allows it)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Replica.open(n.path)) for n in nodes]


def same_state(a: Replica, b: Replica, what: str, timeout: float = 60) -> None:
    wait_until(lambda: a.state_digest() == b.state_digest(), timeout, what)


def a_and_b(tmp_path: Path, procs: list[NodeProc]) -> tuple[NodeProc, NodeProc]:
    """Node a, and node b seeded with a's address."""
    a = NodeProc(tmp_path / "a").start()
    procs.append(a)
    b = NodeProc(tmp_path / "b", seeds=[("127.0.0.1", a.port)]).start()
    procs.append(b)
    return a, b


def test_processes_linked_by_seeds_converge_including_writes_of_other_processes(
        tmp_path: Path, procs: list[NodeProc]) -> None:
    a = NodeProc(tmp_path / "a").start()
    procs.append(a)
    others = [NodeProc(tmp_path / n, seeds=[("127.0.0.1", a.port)]).start() for n in "bc"]
    procs += others
    # the test process writes into each replica's LMDB: the nodes notice and push
    with replicas_of(*procs) as reps:
        for i, r in enumerate(reps):
            for j in range(20):
                r.add(f"memory {j} written at replica {i}", app_id="demo")
        wait_until(lambda: len(digests(reps)) == 1, 90, "convergence")
        assert len(reps[1].list(app_id="demo")) == 60


def test_processes_find_each_other_by_mdns_on_loopback(tmp_path: Path,
                                                      procs: list[NodeProc]) -> None:
    procs += [NodeProc(tmp_path / n, mdns=True).start() for n in "abc"]
    with replicas_of(*procs) as reps:
        for i, r in enumerate(reps):
            r.add(f"hello from {i}")
        wait_until(lambda: len(digests(reps)) == 1, 120, "convergence by mDNS")


def test_a_node_killed_with_sigkill_restarts_and_catches_up(tmp_path: Path,
                                                            procs: list[NodeProc]) -> None:
    a, b = a_and_b(tmp_path, procs)
    with replicas_of(a, b) as (ra, rb):
        ra.add("before the crash")
        same_state(ra, rb, "first sync")
        b.kill9()
        for i in range(50):
            ra.add(f"written while b was dead {i}")
        assert ra.state_digest() != rb.state_digest()
        b2 = NodeProc(tmp_path / "b", seeds=[("127.0.0.1", a.port)]).start()
        procs.append(b2)
        assert b2.replica_id == b.replica_id  # same replica, persisted id
        same_state(ra, rb, "catch-up")


def test_a_restarted_node_remembers_its_peers_without_seeds(tmp_path: Path,
                                                            procs: list[NodeProc]) -> None:
    a, b = a_and_b(tmp_path, procs)
    with replicas_of(a, b) as (ra, rb):
        ra.add("x")
        same_state(ra, rb, "first sync")
        b.stop()  # graceful: known peers saved
        ra.add("while b was away")
        b2 = NodeProc(tmp_path / "b").start()  # no seeds, no mDNS
        procs.append(b2)
        same_state(ra, rb, "reconnect")


def test_partition_then_heal_through_a_faulty_proxy(tmp_path: Path,
                                                    procs: list[NodeProc]) -> None:
    a = NodeProc(tmp_path / "a").start()
    procs.append(a)
    proxy = TcpProxy(("127.0.0.1", a.port))
    b = NodeProc(tmp_path / "b", seeds=[("127.0.0.1", proxy.port)]).start()
    procs.append(b)
    try:
        with replicas_of(a, b) as (ra, rb):
            ra.add("before")
            same_state(ra, rb, "first sync")
            proxy.partition()
            for i in range(30):
                ra.add(f"a during partition {i}")
                rb.add(f"b during partition {i}")
            assert ra.state_digest() != rb.state_digest()
            proxy.heal()
            same_state(ra, rb, "convergence after heal", 90)
            assert len(ra.list()) == 61
    finally:
        proxy.close()


def test_the_node_runner_feeds_memmesh_status_and_saves_its_peers_on_sigterm(
        tmp_path: Path, procs: list[NodeProc], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = a_and_b(tmp_path, procs)

    def peers_of_b() -> list[str]:
        status = read_status(b.path)
        return [] if status is None else [p["replica_id"] for p in status["peers"]]

    wait_until(lambda: peers_of_b() == [a.replica_id], 60, "b's status file naming a")
    assert cli_main(["status", "--data", str(b.path)]) == 0
    assert a.replica_id in capsys.readouterr().out
    b.stop()  # SIGTERM
    assert not (b.path / STATUS_FILE).exists()
    with Replica.open(b.path) as rb:
        assert [p.replica_id for p in load_peers(rb)] == [a.replica_id]

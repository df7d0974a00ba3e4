"""Sync policies over an in-memory network with lost, repeated and reordered frames."""

from __future__ import annotations

import random

import pytest
from gossip_fakes import EPOCH_MS, FakeReplica, FakeScope, converged
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.gossip.protocol import SessionConfig
from memmesh.gossip.protocol.driver import Faults, MemoryNetwork


def populate(replicas: list[FakeReplica], n: int, rng: random.Random) -> None:
    for i in range(n):
        r = rng.choice(replicas)
        r.write(f"key{rng.randrange(n)}", f"{r.replica_id} wrote {i}")


def test_two_replicas_converge_over_a_clean_link() -> None:
    rng = random.Random(1)
    a, b = FakeReplica("A"), FakeReplica("B")
    populate([a, b], 50, rng)
    net = MemoryNetwork(rng=rng)
    net.connect(a, b)
    assert net.run_until(lambda: converged([a, b]), limit=30)
    assert not [n for _, n in net.notices if n.what == "error"]


@pytest.mark.parametrize(
    "faults",
    [Faults(loss=0.2), Faults(duplicate=0.3), Faults(reorder=0.5),
     Faults(loss=0.1, duplicate=0.1, reorder=0.3)],
    ids=["loss", "duplication", "reordering", "all"],
)
def test_three_replicas_converge_despite_faulty_links(faults: Faults) -> None:
    rng = random.Random(7)
    rs = [FakeReplica(x) for x in "ABC"]
    populate(rs, 120, rng)
    net = MemoryNetwork(rng=rng, config=SessionConfig(
        chunk_bytes=500, window=4, rto=0.3, keepalive=1.0, idle_timeout=5.0,
        handshake_timeout=2.0))
    net.connect(rs[0], rs[1], faults)
    net.connect(rs[1], rs[2], faults)
    net.connect(rs[2], rs[0], faults)
    assert net.run_until(lambda: converged(rs), limit=300)


def test_a_line_of_replicas_relays_through_the_middle() -> None:
    rng = random.Random(3)
    rs = [FakeReplica(x) for x in "ABC"]
    populate([rs[0], rs[2]], 40, rng)
    net = MemoryNetwork(rng=rng)
    net.connect(rs[0], rs[1])
    net.connect(rs[1], rs[2])  # A and C never talk directly
    assert net.run_until(lambda: converged(rs), limit=60)


def test_pushes_reach_a_peer_before_the_next_anti_entropy_round() -> None:
    rng = random.Random(5)
    a, b = FakeReplica("A"), FakeReplica("B")
    net = MemoryNetwork(rng=rng, interval=1000.0)
    net.connect(a, b)
    # the dialler pulls when the link opens and b pulls back: each knows the other's summary
    assert net.run_until(lambda: net.syncs >= 2, limit=5)
    start = net.now
    a.write("urgent", "now", priority=True)
    net.push(a, priority=True)
    assert net.run_until(lambda: converged([a, b]), limit=1)
    assert net.now - start < 0.1  # a few steps of 10 ms, not an interval of 1000 s


def test_private_and_acl_excluded_memories_never_reach_the_wire() -> None:
    rng = random.Random(11)
    a, b = FakeReplica("A"), FakeReplica("B")
    a.write("p", "SECRET-PRIVATE-TEXT", private=True)
    a.write("hr", "SECRET-HR-TEXT", app="hr")
    a.write("eng", "shared engineering note", app="eng")
    wire = bytearray()
    net = MemoryNetwork(rng=rng, tap=wire.extend)
    net.set_scope(a, b, FakeScope(frozenset({"eng"})))
    net.connect(a, b)
    assert net.run_until(lambda: "shared engineering note" in b.texts(), limit=30)
    net.run_until(lambda: False, limit=5)  # several more rounds
    assert b"shared engineering note" in wire
    assert b"SECRET" not in wire
    assert "hr" not in b.keys and "p" not in b.keys


@given(st.integers(0, 2**32), st.floats(0, 0.3), st.floats(0, 0.3), st.floats(0, 0.6))
@settings(max_examples=15)
def test_any_fault_mix_converges(seed: int, loss: float, dup: float, reorder: float) -> None:
    rng = random.Random(seed)
    rs = [FakeReplica(x) for x in "ABC"]
    populate(rs, 30, rng)
    net = MemoryNetwork(rng=rng, config=SessionConfig(
        chunk_bytes=300, window=3, rto=0.3, keepalive=1.0, idle_timeout=5.0,
        handshake_timeout=2.0))
    f = Faults(loss, dup, reorder)
    net.connect(rs[0], rs[1], f)
    net.connect(rs[1], rs[2], f)
    assert net.run_until(lambda: converged(rs), limit=600)


def test_a_replica_a_year_ahead_fences_its_writes_while_sync_goes_on() -> None:
    year = 365 * 24 * 3600 * 1000
    a = FakeReplica("A", clock=lambda: EPOCH_MS + year)
    b, c = FakeReplica("B"), FakeReplica("C")
    b.write("k", "from b")
    net = MemoryNetwork(rng=random.Random(4))
    net.connect(a, b, Faults(loss=0.1, reorder=0.2))
    net.connect(c, a)
    assert net.run_until(lambda: a.write_fence is not None and converged([a, b, c]), limit=60)
    assert b.write_fence is None and c.write_fence is None
    assert [n.what for rid, n in net.notices if rid == "A" and n.what.endswith("fenced")] \
        == ["fenced"]

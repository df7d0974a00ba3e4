"""Joins are cheap: a member far behind bulk-syncs from one peer at a time (the others
defer), small pulls from other peers go on meanwhile, an interrupted transfer resumes
where it stopped, and the chunks of one pull reach storage in order on a transport
that reorders them (issue 17)."""

from __future__ import annotations

import random

from gossip_fakes import FakeReplica, converged

from memmesh.gossip.protocol import PolicyConfig, SessionConfig, SyncPolicy
from memmesh.gossip.protocol._bulk import BulkLease, lag
from memmesh.gossip.protocol.driver import Faults, MemoryNetwork
from memmesh.storage.wire import Summary, parse_changes

SMALL_CHUNKS = SessionConfig(chunk_bytes=600, window=4, rto=0.3, keepalive=1.0,
                             idle_timeout=5.0, handshake_timeout=2.0)
BULK = PolicyConfig(interval=1.0, bulk_lag=16)


def _state(n: int, *, writers: str = "ABCD") -> list[FakeReplica]:
    """Replicas named ``writers``, each holding the same ``n`` keys written among them."""
    rs = [FakeReplica(w) for w in writers]
    for i in range(n):
        rs[i % len(rs)].write(f"key{i}", f"value {i} " + "x" * 40)
    for src in rs:
        for dst in rs:
            if src is not dst:
                dst.sync_apply(src.sync_changes(dst.sync_summary()))
    assert converged(rs)
    return rs


def _full_download(source: FakeReplica, max_bytes: int) -> int:
    """S: the payload bytes that take an empty replica to ``source``'s state, chunked."""
    probe, total = FakeReplica("probe"), 0
    while True:
        data = source.sync_changes(probe.sync_summary(), max_bytes=max_bytes)
        total += len(data)
        if parse_changes(data).empty:
            return total
        probe.sync_apply(data)


def _received(policy: SyncPolicy) -> int:
    """Bytes the policy's links received: closed links' (peer table) and open ones'."""
    closed = sum(policy.peers[p].bytes_in for p in policy.peers)
    return closed + sum(lk.session.bytes_received for lk in policy.links)


def _summary(wm: dict[str, int]) -> bytes:
    packed: bytes = Summary("X", wm, bytes(32)).pack()
    return packed


def test_lag_counts_the_events_a_peer_summary_holds_beyond_ours() -> None:
    assert lag(_summary({"a": 5}), _summary({"a": 9, "b": 3})) == 7
    assert lag(None, _summary({"a": 4})) == 4
    assert lag(_summary({"a": 9}), _summary({"a": 4})) == 0
    assert lag(None, b"not a summary") is None


def test_a_pull_is_bulk_when_far_behind_or_when_we_cannot_tell_yet() -> None:
    lease = BulkLease(threshold=10, patience=10.0)
    ours, far, near = _summary({"a": 1}), _summary({"a": 50}), _summary({"a": 5})
    assert lease.bulk(ours, far, synced=True)
    assert not lease.bulk(ours, near, synced=True)
    assert lease.bulk(ours, None, synced=False)  # just started: how far behind?
    assert not lease.bulk(ours, None, synced=True)


def test_a_joiner_downloads_the_state_once_not_once_per_peer() -> None:
    members = _state(160)
    joiner = FakeReplica("J")
    size = _full_download(members[0], SMALL_CHUNKS.chunk_bytes - 256)
    net = MemoryNetwork(rng=random.Random(4), config=SMALL_CHUNKS, policy=BULK)
    for m in members:  # the joiner dials every member at once, as a node its seeds
        net.connect(joiner, m)
    assert net.run_until(lambda: converged([joiner, *members]), limit=60)
    policy = net.policy(joiner)
    assert policy.counters["bulk-deferred"] >= len(members) - 1
    # framing, summaries and acks on top of S, but no second copy of the state
    assert _received(policy) <= 1.1 * size
    senders = {parse_changes(blob).rid for blob in joiner.applied_blobs
               if not parse_changes(blob).empty}
    assert len(senders) == 1


def test_small_pulls_from_other_peers_go_on_during_a_bulk_pull() -> None:
    big = _state(200, writers="A")[0]
    small = FakeReplica("B")
    small.write("b-note", "written on B")
    joiner = FakeReplica("J")
    net = MemoryNetwork(rng=random.Random(2), config=SMALL_CHUNKS,
                        policy=PolicyConfig(interval=1000.0, bulk_lag=16))
    net.connect(joiner, big)  # the joiner's first pull: bulk, it takes the lease
    net.connect(small, joiner)  # B pulls the joiner, which pulls back: 1 event behind
    assert net.run_until(lambda: "written on B" in joiner.texts(), limit=30)
    assert len(joiner.keys) < len(big.keys)  # the bulk transfer still runs
    assert net.policy(joiner).counters["bulk-deferred"] == 0
    assert net.run_until(lambda: len(joiner.keys) == len(big.keys) + 1, limit=60)


def test_a_second_bulk_pull_waits_and_then_ships_only_what_is_still_missing() -> None:
    a, b = _state(120, writers="AB")
    b.write("late", "written on B after the sync")
    joiner = FakeReplica("J")
    net = MemoryNetwork(rng=random.Random(9), config=SMALL_CHUNKS,
                        policy=PolicyConfig(interval=1000.0, bulk_lag=16))
    net.connect(joiner, a)
    net.connect(joiner, b)
    assert net.run_until(lambda: converged([joiner, b]), limit=60)  # b holds a's too
    from_b = [parse_changes(blob) for blob in joiner.applied_blobs
              if parse_changes(blob).rid == "B" and not parse_changes(blob).empty]
    # A's transfer came first; B's deferred pull then carried its one newer key
    assert len(from_b) == 1 and len(from_b[0].states) == 1


def test_an_interrupted_bulk_transfer_resumes_where_it_stopped() -> None:
    source = _state(240, writers="A")[0]
    joiner = FakeReplica("J")
    size = _full_download(source, SMALL_CHUNKS.chunk_bytes - 256)
    net = MemoryNetwork(rng=random.Random(6), config=SMALL_CHUNKS, policy=BULK,
                        reconnect_after=0.5)
    net.connect(joiner, source)
    assert net.run_until(lambda: len(joiner.keys) >= 120, limit=30)
    policy = net.policy(joiner)
    (link,) = policy.links
    policy.close_link(link, net.now)  # the connection is cut mid-transfer
    assert net.run_until(lambda: converged([joiner, source]), limit=60)
    assert policy.counters["syncs"] >= 1
    # the second link's pull started past the chunks applied before the cut
    assert _received(policy) <= 1.15 * size


def test_chunks_reach_storage_in_order_over_a_reordering_lossy_transport() -> None:
    source = _state(200, writers="A")[0]
    joiner = FakeReplica("J")
    net = MemoryNetwork(rng=random.Random(12), config=SMALL_CHUNKS, policy=BULK)
    net.connect(joiner, source, Faults(loss=0.2, duplicate=0.2, reorder=0.8))
    assert net.run_until(lambda: converged([joiner, source]), limit=300)
    # each applied chunk's claims start where the one before it ended: no chunk of a
    # pull was applied before an earlier one (its claims would overlap or leave a gap)
    seen: dict[str, int] = {}
    for blob in joiner.applied_blobs:
        payload = parse_changes(blob)
        for origin, (start, end) in payload.through.items():
            assert start <= seen.get(origin, 0), (origin, start, seen)
            seen[origin] = max(seen.get(origin, 0), end)


def test_a_bulk_pull_from_a_peer_gone_silent_yields_to_the_next_one() -> None:
    a, b = _state(150, writers="AB")
    joiner = FakeReplica("J")
    slow = SessionConfig(chunk_bytes=600, window=4, rto=5.0, keepalive=1.0,
                         idle_timeout=60.0, handshake_timeout=2.0)
    net = MemoryNetwork(rng=random.Random(3), config=slow,
                        policy=PolicyConfig(interval=1000.0, bulk_lag=16, bulk_patience=2.0))
    net.connect(joiner, a)
    net.connect(joiner, b)
    policy = net.policy(joiner)
    assert net.run_until(lambda: policy.bulk.holder is not None and len(joiner.keys) > 10,
                         limit=10)
    holder = policy.bulk.holder
    assert holder is not None
    stalled = next(lk for lk in net.links if lk.b.replica_id == holder.peer_id)
    stalled.faults = Faults(loss=1.0)  # its peer goes silent mid-transfer
    assert net.run_until(lambda: converged([joiner, a]), limit=20)
    assert holder.open  # the other peer's pull ran while that link still lived
    assert policy.counters["bulk-deferred"] >= 1

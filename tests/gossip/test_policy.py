"""The sync policy driven by hand: it is pure, so every decision is checked directly."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gossip_fakes import EPOCH_MS, FakeReplica, FakeScope, converged

from memmesh.crdt import packb
from memmesh.gossip.protocol import (
    Changes,
    Fence,
    HandshakeGate,
    Notice,
    Outcome,
    PeerLink,
    PolicyConfig,
    SessionConfig,
    Summary,
    SyncPolicy,
    encode_frame,
    perform,
)
from memmesh.gossip.protocol.messages import Push, encode_message

FP = b"policy-test"
YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass
class Member:
    replica: FakeReplica
    policy: SyncPolicy
    notices: list[Notice] = field(default_factory=list)


class Wire:
    """Policies joined by perfect in-memory pipes, requests performed inline."""

    def __init__(self, **config: object) -> None:
        self.now = 0.0
        self.config = PolicyConfig(**config)  # type: ignore[arg-type]
        self.members: dict[str, Member] = {}
        self.pipes: list[tuple[Member, PeerLink, Member, PeerLink]] = []

    def member(self, replica: FakeReplica, *, scopes: dict[str, object] | None = None,
               **config: object) -> Member:
        notices: list[Notice] = []
        cfg = PolicyConfig(**{**self.config.__dict__, **config}) if config else self.config
        policy = SyncPolicy(replica.replica_id, fingerprint=FP, rng=random.Random(7),
                            now=self.now, max_drift_ms=replica.max_drift_ms, config=cfg,
                            session_config=SessionConfig(chunk_bytes=300),
                            scope_of=lambda peer: (scopes or {}).get(peer),
                            report=notices.append)
        m = self.members[replica.replica_id] = Member(replica, policy, notices)
        return m

    def dial(self, a: Member, b: Member, *, a_claims: str | None = None,
             address: str | None = None) -> tuple[PeerLink, PeerLink]:
        """``a`` dials ``b``; ``a_claims``: the id ``b`` authenticates ``a`` as."""
        la = a.policy.open_link(self.now, a.replica.clock(), outbound=True,
                                expected_peer_id=b.replica.replica_id)
        lb = b.policy.open_link(self.now, b.replica.clock(), outbound=False,
                                expected_peer_id=a_claims or a.replica.replica_id,
                                address=address)
        self.pipes.append((a, la, b, lb))
        return la, lb

    def settle(self, m: Member, *, skip: type | None = None) -> None:
        held = []
        while (req := m.policy.next_request()) is not None:
            if skip is not None and isinstance(req, skip):
                held.append(req)
                continue
            m.policy.complete(req, perform(m.replica, req), self.now)
        for req in held:
            m.policy._queue.append(req)

    def run(self, rounds: int = 2000) -> None:
        """Move bytes and perform requests until nothing moves."""
        for _ in range(rounds):
            moved = False
            for m in self.members.values():
                self.settle(m)
            for a, la, b, lb in self.pipes:
                for src, dst, pol in ((la, lb, b.policy), (lb, la, a.policy)):
                    data = src.session.data_to_send()
                    if data and not dst.closed:
                        pol.receive_data(dst, data, self.now,
                                         self.members[pol.replica_id].replica.clock())
                        moved = True
            if not moved and not any(m.policy.pending_requests for m in self.members.values()):
                return
        raise AssertionError("the wire never went quiet")


def test_rounds_come_every_interval_within_the_jitter() -> None:
    policy = SyncPolicy("A", fingerprint=FP, rng=random.Random(1), now=0.0,
                        config=PolicyConfig(interval=2.0, jitter=0.1))
    assert 0 <= policy.next_round < 2.0  # a random phase
    gaps = []
    now = 0.0
    for _ in range(200):
        now = policy.next_round
        assert policy.round(now, EPOCH_MS) is None  # no peers: nothing to do
        gaps.append(policy.next_round - now)
    assert min(gaps) >= 1.8 and max(gaps) <= 2.2 and max(gaps) - min(gaps) > 0.2


def test_a_round_pulls_from_a_member_and_asks_to_dial_one_without_a_link() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    assert a.policy.round(0.0, EPOCH_MS, candidates=["A", "B"]) == "B"  # dial B
    la, _ = w.dial(a, b)
    w.run()
    assert a.policy.peer_ids() == ("B",) and la.open
    b.replica.write("k", "from b")
    assert a.policy.round(1.0, EPOCH_MS, candidates=["A", "B"]) is None  # linked: it pulls
    w.run()
    assert converged([a.replica, b.replica])


def test_rounds_are_skipped_while_data_still_arrives_but_not_forever() -> None:
    w = Wire(max_skipped_rounds=2)
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    la, _lb = w.dial(a, b)
    w.run()
    frame = encode_frame(encode_message(Push(10_000, packb({"keys": ()}), False)),
                         cap=1 << 20)
    a.policy.receive_data(la, frame, 1.0, EPOCH_MS)  # a pushed frame, not applied yet
    assert la.session.receiving
    pending = []
    while (req := a.policy.next_request()) is not None:
        pending.append(req)
    for t in (2.0, 3.0):
        a.policy.round(t, EPOCH_MS)
        assert a.policy.next_request() is None  # skipped: no summary taken
    a.policy.round(4.0, EPOCH_MS)
    req = a.policy.next_request()
    assert isinstance(req, Summary) and req.purpose == "pull"  # the third one pulls


def test_a_second_link_under_the_same_id_is_refused_and_never_serves() -> None:
    w = Wire()
    alice_memory = FakeReplica("A")
    alice_memory.write("canary", "alice's canary", app="alice")
    alice_memory.write("note", "bob may read this", app="bob")
    a = w.member(alice_memory, scopes={"B": FakeScope(frozenset({"bob"}))})
    b = w.member(FakeReplica("B"))
    w.dial(b, a)
    w.run()
    assert b.replica.texts() == {"bob may read this"}
    # the restricted peer dials again under its own id: refused as a duplicate
    b2 = Member(FakeReplica("B"), SyncPolicy("B", fingerprint=FP, rng=random.Random(2),
                                             now=0.0))
    w.members["B2"] = b2
    _l2b, l2a = w.dial(b2, a)
    w.run()
    assert l2a.closed and not l2a.registered and l2a.closed_reason == "duplicate"
    assert a.policy.registered["B"] is not l2a
    assert [n.reason for n in a.notices if n.what == "rejected"] == ["duplicate"]
    assert "alice's canary" not in b.replica.texts() | b2.replica.texts()


def test_crossed_dials_keep_the_link_dialled_by_the_smaller_id_on_both_ends() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    by_a = w.dial(a, b)  # dialled by A (the smaller id)
    by_b = w.dial(b, a)
    w.run()
    assert a.policy.registered["B"] is by_a[0] and b.policy.registered["A"] is by_a[1]
    assert by_b[0].closed and by_b[1].closed
    # benign: no error counted against either peer, nothing logged above INFO
    assert not a.policy.peers["B"].errors and not b.policy.peers["A"].errors
    assert all(n.level == "info" for n in a.notices + b.notices)


def test_peers_beyond_the_sync_slots_are_refused_busy_and_retry() -> None:
    w = Wire(max_syncs=1)
    hub = w.member(FakeReplica("H"))
    for i in range(100):
        hub.replica.write(f"k{i}", "hub text " * 5)
    leaves = [w.member(FakeReplica(x)) for x in "PQ"]
    for leaf in leaves:
        w.dial(leaf, hub)
    w.run()
    assert hub.policy.counters["busy"] >= 1
    assert sum(leaf.policy.counters["pull-refused:busy"] for leaf in leaves) >= 1
    for leaf in leaves:  # the refused one pulls again on a later round
        leaf.policy.round(5.0, EPOCH_MS)
        w.run()
    assert converged([hub.replica, *(leaf.replica for leaf in leaves)])


def test_a_pull_that_ends_with_more_is_followed_by_another() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    for i in range(60):
        b.replica.write(f"k{i}", f"text number {i}")
    a.policy.session_config = SessionConfig(chunk_bytes=300, max_chunks_per_sync=2)
    b.policy.session_config = a.policy.session_config
    w.dial(a, b)
    w.run()
    assert converged([a.replica, b.replica])  # no round needed: follow-ups did it
    assert a.policy.counters["syncs"] > 2


def test_refused_states_are_counted_per_peer_by_reason_and_reported() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    for key in ("k1", "k2", "k3"):
        b.replica.write(key, key)
    a.replica.refuse.update({"k1": "clock-ahead", "k2": "clock-ahead", "k3": "invalid"})
    w.dial(a, b)
    w.run()
    stats = a.policy.peers["B"]
    assert stats.refusals == {"clock-ahead": 2, "invalid": 1}
    refused = [n for n in a.notices if n.what == "refused"]
    assert refused and refused[0].level == "warning" and "clock-ahead: 2" in str(refused[0])


def test_a_failing_sync_changes_closes_that_link_only_and_is_counted() -> None:
    w = Wire()
    a, b, c = (w.member(FakeReplica(x)) for x in "ABC")
    w.dial(a, b)
    w.dial(c, b)
    w.run()
    b.replica.write("k", "v")
    la = a.policy.link_to("B")
    assert la is not None
    a.policy.pull_from("B", 1.0)
    req = a.policy.next_request()
    assert isinstance(req, Summary)
    a.policy.complete(req, Outcome(data=b"\xc1 not a summary"), 1.0)
    w.run()  # B fails to read the summary: it closes the link to A
    assert la.closed and b.policy.peers["A"].errors["invalid-summary"] == 1
    assert b.policy.peer_ids() == ("C",)  # the other link lives on


def test_a_summary_larger_than_the_peers_frame_cap_closes_the_link_not_the_node() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    la, _ = w.dial(a, b)
    w.run()
    a.policy.pull_from("B", 1.0)
    req = a.policy.next_request()
    assert isinstance(req, Summary)
    huge = b"x" * (la.session.peer.max_frame + 1)  # type: ignore[union-attr]
    a.policy.complete(req, Outcome(data=huge), 1.0)  # no exception escapes
    assert la.closed and a.policy.peers["B"].errors["frame-size"] == 1
    assert [n.reason for n in a.notices if n.what == "error"] == ["frame-size"]


def test_an_apply_that_raises_anything_closes_that_link_and_is_counted() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    b.replica.write("k", "v")
    broken = a.replica.sync_apply

    def explode(data: bytes) -> object:
        raise KeyError("a bug in storage")

    a.replica.sync_apply = explode  # type: ignore[method-assign]
    la, _ = w.dial(a, b)
    w.run()
    assert la.closed and a.policy.peers["B"].errors["internal"] == 1
    a.replica.sync_apply = broken  # type: ignore[method-assign]


def test_a_member_ahead_of_its_one_peer_fences_and_the_peer_does_not() -> None:
    w = Wire()
    now_ms = [EPOCH_MS + YEAR_MS]
    a = w.member(FakeReplica("A", clock=lambda: now_ms[0]))
    b = w.member(FakeReplica("B"))
    w.dial(b, a)
    w.run()
    assert a.policy.fence is not None and "ahead" in a.policy.fence
    assert a.replica.write_fence == a.policy.fence  # performed as a Fence request
    assert b.policy.fence is None and b.replica.write_fence is None
    assert a.policy.clock.offset_ms("B", 0.0, now_ms[0]) == -YEAR_MS
    assert [n.what for n in a.notices] == ["fenced"]
    now_ms[0] = EPOCH_MS  # the clock is fixed: the next round sees it
    a.policy.round(1.0, now_ms[0])
    w.run()
    assert a.policy.fence is None and a.replica.write_fence is None
    assert [n.what for n in a.notices] == ["fenced", "unfenced"]


def test_the_fence_needs_a_majority_of_the_peers_heard_from() -> None:
    w = Wire()
    a = w.member(FakeReplica("A", clock=lambda: EPOCH_MS + YEAR_MS))
    peers = [w.member(FakeReplica("P", clock=lambda: EPOCH_MS + YEAR_MS)),
             w.member(FakeReplica("Q"))]
    for p in peers:
        w.dial(p, a)
    w.run()
    assert a.policy.fence is None  # ahead of Q only: one of two is no majority
    w.dial(w.member(FakeReplica("R")), a)
    w.run()
    assert a.policy.fence is not None  # ahead of Q and R: two of three


def test_a_fence_put_up_by_someone_else_is_left_alone() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    a.replica.fence_writes("maintenance")
    w.dial(a, b)
    w.run()
    a.policy.round(1.0, EPOCH_MS)
    w.run()
    assert a.replica.write_fence == "maintenance"
    assert not any(isinstance(r, Fence) for r in a.policy._queue)


def test_links_hoarding_partial_frames_are_dropped_when_buffers_are_full() -> None:
    w = Wire(max_buffered=10_000)
    victim = w.member(FakeReplica("V"))
    hoarders = [w.member(FakeReplica(f"M{i}")) for i in range(3)]
    honest = w.member(FakeReplica("H"))
    links = [w.dial(m, victim)[1] for m in (*hoarders, honest)]
    w.run()
    assert all(lk.open for lk in links)
    for i, lk in enumerate(links[:3]):  # each announces 1 MiB and sends 4,000 bytes
        victim.policy.receive_data(lk, b"\x00\x10\x00\x00" + b"z" * (4000 + i), 1.0, EPOCH_MS)
    assert [lk.closed for lk in links] == [False, False, True, False]  # largest first
    assert victim.policy.counters["dropped:buffered"] == 1
    assert sum(lk.held_bytes for lk in links if not lk.closed) <= 10_000


def test_a_full_handshake_gate_drops_the_oldest_pending_connection() -> None:
    gate = HandshakeGate(3)
    assert [gate.admit(k) for k in "abc"] == [None, None, None]
    assert gate.admit("d") == "a"
    gate.done("b")
    assert gate.admit("e") is None and len(gate) == 3
    assert gate.admit("f") == "c"


def test_a_new_peer_replaces_the_least_recently_useful_idle_link_when_full() -> None:
    w = Wire(max_links=2)
    hub = w.member(FakeReplica("H"))
    old = [w.member(FakeReplica(x)) for x in "PQ"]
    links = []
    for i, m in enumerate(old):
        w.now = float(i)
        links.append(w.dial(m, hub)[1])
        w.run()
    w.now = 10.0
    w.dial(w.member(FakeReplica("R")), hub)
    w.run()
    assert hub.policy.peer_ids() == ("Q", "R")  # P did nothing useful for longest
    assert links[0].closed and hub.policy.counters["dropped:max-links"] == 1


def test_links_per_address_are_capped() -> None:
    w = Wire(max_links_per_address=1)
    hub = w.member(FakeReplica("H"))
    p, q = w.member(FakeReplica("P")), w.member(FakeReplica("Q"))
    _, lp = w.dial(p, hub, address="10.0.0.9")
    w.run()
    _, lq = w.dial(q, hub, address="10.0.0.9")
    w.run()
    assert lp.closed and lq.open  # the idle one from the same address made room


def test_storage_requests_of_a_closed_link_are_dropped() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    b.replica.write("k", "v")
    la, _ = w.dial(a, b)
    w.run()
    a.policy.pull_from("B", 1.0)
    a.policy.close_link(la, 1.0)
    assert a.policy.next_request() is None


def test_perform_turns_every_exception_into_an_outcome() -> None:
    r = FakeReplica("A")
    link = SyncPolicy("A", fingerprint=FP, rng=random.Random(1), now=0.0).open_link(
        0.0, EPOCH_MS, outbound=True)
    bad = perform(r, Changes(link, 1, b"\xc1", 100, None, "serve"))
    assert not bad.ok and bad.typed and bad.error == "DecodeError"
    assert perform(r, Fence("why")).ok and r.write_fence == "why"


def test_of_two_members_that_discover_each_other_the_smaller_id_dials_first() -> None:
    w = Wire()
    a, b = w.member(FakeReplica("A")), w.member(FakeReplica("B"))
    assert a.policy.dial_delay("A") is None  # ourselves
    assert a.policy.dial_delay("B") == 0.0  # A < B: its dial is the link both keep
    wait = b.policy.dial_delay("A")
    assert wait is not None and wait > 0
    assert not a.policy.redundant_dial("B") and not a.policy.redundant_dial(None)
    w.dial(a, b)
    w.run()
    assert a.policy.dial_delay("B") is None and b.policy.dial_delay("A") is None  # linked
    assert a.policy.redundant_dial("B")  # A dialled B already: a second dial is surplus
    assert not b.policy.redundant_dial("A")  # B's own dial would be a crossed one

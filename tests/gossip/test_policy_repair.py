"""The sync policy's digest repair decisions, driven with fake replicas on virtual time:
when a pull carries the digest, over which scope, what it asks for, the back-off, and
what the operator is told.  (The repair itself is storage's: see
test_repair_network.py for real replicas.)"""

from __future__ import annotations

import random

from gossip_fakes import FakeReplica, FakeScope

from memmesh.gossip.protocol import PolicyConfig
from memmesh.gossip.protocol._repair import PeerRepair, PullRecord, RepairPlan
from memmesh.gossip.protocol.driver import MemoryNetwork


def net_of(**config: object) -> MemoryNetwork:
    return MemoryNetwork(rng=random.Random(5),
                         policy=PolicyConfig(**{"interval": 1.0, **config}))  # type: ignore[arg-type]


def digests(replica: FakeReplica) -> list[object]:
    """The digest scopes of the repair pulls ``replica`` took summaries for."""
    return [scope for digest, scope, _ in replica.summary_args if digest]


def test_a_converged_pair_settles_its_scheduled_checks_by_roots_alone() -> None:
    a, b = FakeReplica("A"), FakeReplica("B")
    for i in range(5):
        a.write(f"k{i}", f"text {i}")
    net = net_of(repair_interval=5.0)
    net.connect(a, b)
    net.run_until(lambda: False, limit=60)
    for r in (a, b):
        policy = net.policy(r)
        assert policy.repair.clean_checks >= 8  # about one per repair_interval
        assert digests(r) == [] and policy.counters["repairs"] == 0


def test_quiet_exchanges_whose_roots_differ_start_early_repairs_that_back_off() -> None:
    a, b = FakeReplica("A"), FakeReplica("B")
    b.write("hidden", "B's write")
    a.held["B"] = {1}  # a false watermark: A claims B's write, B never ships it
    net = net_of(repair_interval=1000.0, repair_min_gap=2.0)
    net.connect(a, b)
    net.run_until(lambda: bool(digests(a)), limit=10)
    first = net.now
    assert digests(a) == [None]  # an early repair, over what B serves A: everything
    net.run_until(lambda: False, limit=120)
    # nothing found (fakes list no hashes): 2, 4, 8, 16, 32, 64 s apart at the most
    assert 3 <= len(digests(a)) <= 7
    assert net.policy(a).counters["repairs"] == len(digests(a)) and first < 10


def test_a_check_whose_roots_differ_repairs_over_the_scope_the_peer_serves() -> None:
    a, b = FakeReplica("A"), FakeReplica("B")
    a.write("shared", "for B", app="x")
    a.write("withheld", "not for B", app="y")  # B never gets it: the roots always differ
    net = net_of(repair_interval=5.0)
    net.set_scope(a, b, FakeScope(frozenset({"x"})))
    net.connect(b, a)
    net.run_until(lambda: len(digests(b)) >= 2, limit=30)
    # B pulls from A with a digest over what A serves it (learnt from A's payloads)
    assert set(digests(b)) == {FakeScope(frozenset({"x"}))}
    assert not any(n.what == "diverged" for _, n in net.notices)


def test_a_wrong_guess_of_the_served_scope_is_corrected_by_an_immediate_repair() -> None:
    a, b = FakeReplica("A"), FakeReplica("B")
    a.write("withheld", "not for B", app="y")  # the roots differ...
    b.held["A"] = {1}  # ...but A ships B nothing, not even a claim: no payload to learn from
    net = net_of(repair_interval=5.0)
    net.set_scope(a, b, FakeScope(frozenset({"x"})))
    net.connect(b, a)
    net.run_until(lambda: len(digests(b)) >= 2, limit=30)
    guess, corrected = digests(b)[:2]
    assert guess is None and corrected == FakeScope(frozenset({"x"}))
    gap = [i for i, (d, _, _) in enumerate(b.summary_args) if d]
    assert gap[1] == gap[0] + 1  # the very next pull, not the next interval's


def test_wanted_keys_ride_the_next_pulls_want_a_bounded_number_at_a_time() -> None:
    a, b = FakeReplica("A"), FakeReplica("B")
    b.write("k", "v")
    keys = tuple(f"key-{i:04d}" for i in range(600))
    a.inject["B"] = [{"wanted": keys}]
    net = net_of(repair_want=256)
    net.connect(a, b)
    net.run_until(lambda: False, limit=5)
    asked = [want for _, _, want in a.summary_args if want]
    assert [len(w) for w in asked] == [256, 256, 88]
    assert tuple(k for w in asked for k in w) == keys
    diverged = [n for rid, n in net.notices if rid == "A" and n.what == "diverged"]
    assert len(diverged) == 1 and diverged[0].level == "warning"
    assert "600 keys" in str(diverged[0]) and diverged[0].peer == "B"


def test_a_watermark_proved_false_names_its_origin_and_claimant_and_repairs_early() -> None:
    a, m, b = FakeReplica("A"), FakeReplica("M"), FakeReplica("B")
    m.write("x", "from m")
    b.write("y", "from b")
    a.inject["M"] = [{"through": {"C#1": 2**62}}]
    net = net_of(repair_interval=1000.0)
    net.connect(a, m)
    net.run_until(lambda: not a.inject["M"], limit=5)
    a.inject["B"] = [{"lowered": {"C#1": 0}}]
    net.connect(a, b)
    net.run_until(lambda: bool(digests(a)), limit=5)
    lowered = [n for rid, n in net.notices if rid == "A" and n.what == "lowered"]
    assert len(lowered) == 1 and lowered[0].level == "warning" and lowered[0].peer == "B"
    assert "C#1 to 0" in lowered[0].detail and "peer M" in lowered[0].detail
    policy = net.policy(a)
    assert policy.peers["M"].false_claims == 1 and policy.counters["lowered"] == 1
    assert policy.counters["repairs"] >= 1  # evidence: repaired early, with B


def test_repairs_back_off_while_they_find_nothing_and_start_over_when_one_repairs() -> None:
    plan = RepairPlan(interval=30.0, min_gap=2.0, want_size=256, rng=random.Random(1),
                      now=0.0)
    st = PeerRepair()
    plan.evidence(st)
    gaps = []
    now = 0.0
    for _ in range(6):
        while not plan.early_due(st, now):
            now += 0.5
        record = plan.plan(st, now)
        assert record.digest
        plan.completed(st, record, covers=True)  # found nothing
        gaps.append(st.gap)
        plan.evidence(st)
    assert gaps == [4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    found = plan.plan(st, now + 30)
    plan.applied(st, found, changed=(), scope=None, wanted=("k",))
    plan.completed(st, found, covers=True)
    asked = plan.plan(st, now + 31)
    assert asked.want == ("k",) and not asked.digest
    plan.applied(st, asked, changed=("k",), scope=None, wanted=())
    plan.completed(st, asked, covers=True)
    assert st.gap == 0.0 and st.early  # repaired: checked again, min_gap after the last
    assert plan.early_due(st, now + 30 + 2.0)


def test_a_pull_record_is_quiet_only_when_plain_and_changing_nothing() -> None:
    assert PullRecord(False, None, False, ()).quiet
    assert not PullRecord(True, None, False, ()).quiet
    assert not PullRecord(False, None, False, ("k",)).quiet
    assert not PullRecord(False, None, False, (), changed=1).quiet

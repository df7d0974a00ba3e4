"""Digest repair scheduled by the sync policy, end to end: real replicas on the test
driver (:class:`MemoryNetwork`), with divergences their watermarks cannot see (issue 11,
case 4 and deliverable 6)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from memmesh.crdt import packb, unpackb
from memmesh.gossip.protocol import PolicyConfig
from memmesh.gossip.protocol.driver import MemoryNetwork
from memmesh.storage import PeerScope, Replica
from memmesh.storage._keystore import load, remove

BOB = PeerScope(users=frozenset({"bob"}))


@contextmanager
def replicas(root: Path, *names: str) -> Iterator[list[Replica]]:
    with ExitStack() as stack:
        yield [stack.enter_context(Replica.open(root / n, replica_id=n)) for n in names]


def network(*, tap: Callable[[bytes], None] | None = None, **config: object) -> MemoryNetwork:
    return MemoryNetwork(rng=random.Random(3), tap=tap,
                         policy=PolicyConfig(**{"interval": 1.0, **config}))  # type: ignore[arg-type]


def equal(*rs: Replica) -> Callable[[], bool]:
    return lambda: len({r.state_digest() for r in rs}) == 1


def forge_claim(sender: Replica, victim: Replica, origin: str, counter: int) -> None:
    """Case 4: a payload from ``sender`` whose ``through`` claims ``{origin: counter}``
    and that carries no state."""
    plain = dict(unpackb(sender.sync_changes(victim.sync_summary())))  # type: ignore[call-overload]
    base = unpackb(victim.sync_summary())["wm"].get(origin, 0)  # type: ignore[index]
    victim.sync_apply(packb(dict(plain, states=(), through={origin: (base, counter)})))


def watermark(replica: Replica, origin: str) -> int:
    wm: int = unpackb(replica.sync_summary())["wm"].get(origin, 0)  # type: ignore[index]
    return wm


def delete_behind_the_journal(replica: Replica, key: str) -> None:
    """Lose one key through internals (a bug, a bad disk): the replica's watermarks still
    say it holds every event of that key, so no peer will ship it again."""
    def drop(txn: object) -> None:
        skey, raw, state = load(txn, key)
        assert raw is not None and state is not None
        remove(txn, key, skey, raw, state)

    replica._env.write(drop)
    assert replica.get(key) is None


def test_a_forged_claim_cannot_keep_the_origins_later_writes_away(tmp_path: Path) -> None:
    """Case 4: ``through = {C: 2**62}`` with no states, accepted by V: C's later writes
    used to reach neither V nor (the lie passed on) W, ever.  The lie now stays with V
    (a replica claims an origin only as far as the events of it it holds), and digest
    repair between H and V finds what it hides."""
    with replicas(tmp_path, "carol", "honest", "victim", "wanda", "mallory") as rs:
        carol, honest, victim, wanda, mallory = rs
        net = network()
        for a, b in ((carol, honest), (honest, victim), (victim, wanda)):
            net.connect(a, b)
        carol.add("before the lie")
        assert net.run_until(equal(carol, honest, victim, wanda), limit=30)
        origin = str(carol.origin)
        forge_claim(mallory, victim, origin, 2**62)
        syncs = net.policy(wanda).peers["victim"].syncs
        assert net.run_until(lambda: net.policy(wanda).peers["victim"].syncs >= syncs + 3,
                             limit=30)
        assert watermark(victim, origin) == 2**62
        assert watermark(wanda, origin) == watermark(carol, origin)  # not passed on
        later = carol.add("written after the lie")
        net.push(carol)
        start = net.now
        assert net.run_until(lambda: all(r.get(later) is not None
                                         for r in (honest, victim, wanda)), limit=60)
        assert net.run_until(equal(carol, honest, victim, wanda), limit=60)
        assert net.now - start < 60  # within two repair intervals, found by the policy
        lowered = [n for rid, n in net.notices if rid == "victim" and n.what == "lowered"]
        assert lowered and origin in lowered[0].detail
        assert net.policy(victim).peers["honest"].repaired >= 1
        assert net.policy(victim).counters["repairs"] >= 1
        assert watermark(victim, origin) == watermark(carol, origin)


def test_when_the_origin_is_a_peer_its_own_counter_and_repair_undo_a_forged_claim(
        tmp_path: Path) -> None:
    """C itself is a peer of the victim: the ``me`` authority rule lowers the false
    watermark as soon as C pulls; scheduled repair finds what the lie hid meanwhile."""
    with replicas(tmp_path, "carol", "victim", "wanda", "mallory") as rs:
        carol, victim, wanda, mallory = rs
        net = network()
        net.connect(carol, victim)
        net.connect(victim, wanda)
        carol.add("before the lie")
        assert net.run_until(equal(carol, victim, wanda), limit=30)
        origin = str(carol.origin)
        forge_claim(mallory, victim, origin, 2**62)
        hidden = [carol.add(f"hidden by the lie {i}") for i in range(3)]
        assert net.run_until(lambda: all(wanda.get(k) is not None for k in hidden), limit=60)
        assert watermark(victim, origin) < 2**62 and watermark(wanda, origin) < 2**62
        later = carol.add("written once the lie was undone")
        net.push(carol)
        assert net.run_until(lambda: wanda.get(later) is not None, limit=30)
        assert net.run_until(equal(carol, victim, wanda), limit=30)


def test_a_key_lost_behind_the_watermarks_is_repaired_from_a_peer(tmp_path: Path) -> None:
    with replicas(tmp_path, "ra", "rb") as (a, b):
        ids = [a.add(f"memory {i}") for i in range(50)]
        net = network()
        net.connect(a, b)
        assert net.run_until(equal(a, b), limit=30)
        delete_behind_the_journal(b, ids[17])
        assert net.run_until(equal(a, b), limit=60)
        assert b.get(ids[17]) is not None
        stats = net.policy(b).peers["ra"]
        assert stats.repairs >= 1 and stats.repaired == 1
        diverged = [n for rid, n in net.notices if rid == "rb" and n.what == "diverged"]
        assert len(diverged) == 1 and diverged[0].peer == "ra"


def test_a_peer_restricted_to_one_user_is_repaired_over_its_scope_only(
        tmp_path: Path) -> None:
    with replicas(tmp_path, "ra", "rb") as (a, b):
        bobs = [a.add(f"bob's memory {i}", user_id="bob") for i in range(30)]
        alices = [a.add(f"CANARY alice {i}", user_id="alice") for i in range(30)]
        net = network()
        net.set_scope(a, b, BOB)  # a serves b only bob's memories
        net.connect(b, a)
        assert net.run_until(lambda: all(b.get(k) is not None for k in bobs), limit=30)
        net.run_until(lambda: False, limit=5)
        delete_behind_the_journal(b, bobs[3])
        assert net.run_until(lambda: b.get(bobs[3]) is not None, limit=90)
        assert all(b.get(k) is None for k in alices)
        assert net.policy(b).peers["ra"].repaired == 1
        assert net.policy(b).peers["ra"].repair.scope == BOB
        # and b's rounds now prefer peers whose scope overlaps bob's (issue 17: kin)
        assert net.policy(b).kin.served_scope == BOB
        assert net.policy(a).kin.served_scope is None  # b serves a everything


def _quiet_bytes(root: Path, *, scoped: bool, repair: bool) -> tuple[int, int, int]:
    """Bytes four converged replicas exchange in 120 s, their repair pulls and clean
    checks."""
    sent = [0]

    def tap(frame: bytes) -> None:
        sent[0] += len(frame)

    with replicas(root, "r0", "r1", "r2", "r3") as rs:
        for i, r in enumerate(rs):
            r.add(f"memory of {i}", user_id="bob")
            r.add(f"alice's {i}", user_id="alice")
        net = network(tap=tap, repair_interval=30.0 if repair else float("inf"))
        for i, a in enumerate(rs):
            for b in rs[i + 1:]:
                net.connect(a, b)
                if scoped:
                    net.set_scope(a, b, BOB)
                    net.set_scope(b, a, BOB)
        assert net.run_until(lambda: all(all(r.get(k.id) is not None for k in
                                             rs[0].list(user_id="bob")) for r in rs), limit=30)
        net.run_until(lambda: False, limit=10)
        sent[0] = 0
        before = sum(net.policy(r).counters["repairs"] for r in rs)
        net.run_until(lambda: False, limit=120)
        assert not [n for _, n in net.notices if n.what in ("diverged", "lowered")]
        assert sum(net.policy(r).counters["repaired"] for r in rs) == 0
        return (sent[0], sum(net.policy(r).counters["repairs"] for r in rs) - before,
                sum(net.policy(r).repair.clean_checks for r in rs))


def test_repair_is_free_in_a_converged_fleet_that_shares_everything(tmp_path: Path) -> None:
    on, repairs, checks = _quiet_bytes(tmp_path / "on", scoped=False, repair=True)
    off, _, _ = _quiet_bytes(tmp_path / "off", scoped=False, repair=False)
    assert repairs == 0 and checks >= 4 * 3  # every node checked, by roots alone
    assert on == off


def test_repair_costs_one_digest_per_node_per_interval_in_a_converged_scoped_fleet(
        tmp_path: Path) -> None:
    """Restricted peers cannot compare roots (they hold different keys): each scheduled
    check is a repair pull, about 2 KB, and finds nothing."""
    on, repairs, _ = _quiet_bytes(tmp_path / "on", scoped=True, repair=True)
    off, _, _ = _quiet_bytes(tmp_path / "off", scoped=True, repair=False)
    assert 4 * 3 <= repairs <= 4 * 5  # 120 s at one check per 30 s (+-10 %) per node
    assert 0 < on - off <= repairs * 2500  # the sums are 2,048 of them

"""Watermark claims cannot lie for long (issue 11, cases 4 and 5; deliverable 6).

The table of watermarks is bounded (made-up origins are refused at the cap and a summary
never outgrows a frame), a state that proves a watermark false lowers it (the lie
detector), and an origin's own summary is the authority on its counter.
"""

from __future__ import annotations

import random
from pathlib import Path

from storage_helpers import sync_once, ticking

from memmesh.crdt import packb, unpackb
from memmesh.gossip.protocol import SessionConfig
from memmesh.storage import Replica
from memmesh.storage._watermarks import MAX_SUMMARY_ORIGINS, capped

FRAME = SessionConfig().max_frame


def _claims(sender: Replica, receiver: Replica, through: dict[str, tuple[int, int]]) -> bytes:
    """A payload from ``sender`` carrying only the given claims."""
    plain = dict(unpackb(sender.sync_changes(receiver.sync_summary())))  # type: ignore[arg-type]
    return packb(dict(plain, states=(), through=through))


def _wm(replica: Replica) -> dict[str, int]:
    return unpackb(replica.sync_summary())["wm"]  # type: ignore[index,no-any-return]


def test_sixty_thousand_made_up_origins_cannot_outgrow_a_frame(tmp_path: Path) -> None:
    """Case 5: claims for ~60k made-up origins in two frames made the victim's summary
    outgrow the 4 MiB frame cap (and the node died at its next link)."""
    with Replica.open(tmp_path / "m", replica_id="mallory") as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim") as victim:
        victim.add("mine")
        kept = mallory.add("a memory of mallory's")
        victim.sync_apply(mallory.sync_changes(victim.sync_summary()))
        refused = []
        for frame in range(2):
            made_up = {f"{frame}-{i:06d}-".ljust(128, "x"): (0, 7) for i in range(30_000)}
            payload = _claims(mallory, victim, made_up)
            assert len(payload) < FRAME
            refused.extend(victim.sync_apply(payload).refused)
        assert [r.reason for r in refused] == ["claims-cap", "claims-cap"]
        assert all(r.key is None for r in refused)
        summary = victim.sync_summary()
        assert len(summary) < FRAME * 0.6
        wm = unpackb(summary)["wm"]  # type: ignore[index]
        assert len(wm) == MAX_SUMMARY_ORIGINS and wm[victim.origin] == 1
        # an origin this replica holds a key of is still accepted at the cap
        origin = mallory.origin
        assert origin is not None
        result = victim.sync_apply(_claims(mallory, victim, {origin: (1, 5)}))
        assert result.through == {origin: 5} and victim.get(kept) is not None


def test_a_summary_names_its_own_origin_and_the_highest_counters_first() -> None:
    wm = {f"o{i:05d}": i for i in range(MAX_SUMMARY_ORIGINS + 10)}
    wm["me"] = 1
    cut = capped(wm, "me")
    assert len(cut) == MAX_SUMMARY_ORIGINS and cut["me"] == 1
    assert min(v for k, v in cut.items() if k != "me") == 11  # the lowest ten went
    assert capped({"a": 1}, "me") == {"a": 1}


def test_a_state_proving_a_watermark_false_lowers_it(tmp_path: Path) -> None:
    """Case 4: a claim ``{C: 2**62}`` with no states was accepted and C's writes never
    reached the victim again; a state of C the victim lacks now exposes the lie."""
    clock = ticking()
    with Replica.open(tmp_path / "c", replica_id="carol", clock=clock) as carol, \
            Replica.open(tmp_path / "r", replica_id="relay", clock=clock) as relay, \
            Replica.open(tmp_path / "m", replica_id="mallory", clock=clock) as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim:
        early = [carol.add(f"carol {i}") for i in range(3)]
        c = carol.origin
        assert c is not None
        victim.sync_apply(_claims(mallory, victim, {c: (0, 2**62)}))
        assert _wm(victim)[c] == 2**62
        assert unpackb(carol.sync_changes(victim.sync_summary()))["states"] == ()  # type: ignore[index]
        late = carol.add("carol, later")
        sync_once(carol, relay)
        relay.update(late, "carol, later, edited by relay")  # an event the victim's wm allows
        result = victim.sync_apply(relay.sync_changes(victim.sync_summary()))
        assert result.lowered == {c: 0}
        sync_once(carol, victim)  # the next pull re-fetches what the lie hid
        assert all(victim.get(m) is not None for m in (*early, late))


def test_a_hole_below_events_held_lowers_the_watermark_only_to_just_below_it(
        tmp_path: Path) -> None:
    """A key missing below events of its origin held here (a state never shipped, a
    key lost) is found by digest repair; its event proves the watermark false, which is
    lowered to the latest event held before it, not to what the key held (0 for a key
    new here): the next pull re-fetches the events after the hole, not the whole
    origin (it re-fetched half of 100k memories in bench_repair)."""
    clock = ticking()
    with Replica.open(tmp_path / "c", replica_id="carol", clock=clock) as carol, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim:
        ids = [carol.add(f"carol {i}") for i in range(10)]
        c = carol.origin
        assert c is not None
        hidden = ids[6]  # event 7 of carol
        plain = dict(unpackb(carol.sync_changes(victim.sync_summary())))  # type: ignore[arg-type]
        shipped = tuple(s for s in plain["states"] if hidden.encode() not in bytes(s))
        assert len(shipped) == 9
        victim.sync_apply(packb(dict(plain, states=shipped)))  # the claim: through 10
        assert victim.get(hidden) is None and _wm(victim)[c] == 10
        result = victim.sync_apply(carol.sync_changes(victim.sync_summary(want=[hidden])))
        assert victim.get(hidden) is not None
        assert result.lowered == {c: 6}  # event 6 held: events 7..10 are fetched again
        again = unpackb(carol.sync_changes(victim.sync_summary()))
        assert len(again["states"]) == 4  # events 7..10, not 1..10  # type: ignore[index]


def test_honest_sync_never_lowers_a_watermark(tmp_path: Path) -> None:
    """Writes, edits of relayed memories, chunked pulls (some chunks lost), relays, scoped
    and unscoped links: a watermark is never proved false."""
    clock = ticking()
    rng = random.Random(11)
    replicas = [Replica.open(tmp_path / n, replica_id=n, clock=clock) for n in "abcd"]
    ids: list[str] = []
    lowered = []
    for _ in range(120):
        r = rng.choice(replicas)
        known = [m for m in ids if r.get(m) is not None]
        if known and rng.random() < 0.3:
            r.update(rng.choice(known), f"edited by {r.replica_id}")
        else:
            ids.append(r.add(f"{r.replica_id} {len(ids)}", app_id=rng.choice("xy")))
        src, dst = rng.sample(replicas, 2)
        payload = src.sync_changes(dst.sync_summary(), max_bytes=rng.choice((250, 600, None)))
        if rng.random() < 0.8:  # some payloads are lost on the way
            lowered.append(dst.sync_apply(payload).lowered)
    for src in replicas:
        for dst in replicas:
            if src is not dst:
                for _ in range(50):
                    payload = src.sync_changes(dst.sync_summary(), max_bytes=400)
                    lowered.append(dst.sync_apply(payload).lowered)
                    if not unpackb(payload)["states"]:  # type: ignore[index]
                        break
    assert not any(lowered)
    assert len({r.state_digest() for r in replicas}) == 1
    for r in replicas:
        r.close()


def test_an_origin_s_own_summary_lowers_an_inflated_watermark(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "c", replica_id="carol") as carol, \
            Replica.open(tmp_path / "m", replica_id="mallory") as mallory, \
            Replica.open(tmp_path / "v", replica_id="victim") as victim:
        first = carol.add("carol's first")
        c = carol.origin
        assert c is not None
        victim.sync_apply(_claims(mallory, victim, {c: (0, 2**62)}))
        carol.sync_changes(victim.sync_summary())  # carol serves the victim: no effect
        assert _wm(victim)[c] == 2**62
        victim.sync_changes(carol.sync_summary())  # carol pulls: its summary names c ("me")
        assert _wm(victim)[c] == 1  # what carol minted, no more
        second = carol.add("carol's second")  # so carol's new writes reach it again
        victim.sync_apply(carol.sync_changes(victim.sync_summary()))
        assert victim.get(second) is not None
        assert victim.get(first) is None  # what the lie hid below: digest repair's job

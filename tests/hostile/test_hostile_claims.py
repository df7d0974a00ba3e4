"""Lying watermark claims from a byzantine member (issue 11, cases 4 and 5), against
bare replicas and against real trio nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_mesh import Member, Mesh

from memmesh.gossip.protocol import SessionConfig, watermarks
from memmesh.gossip.protocol._summary import push_summary
from memmesh.simulations.forgery import Forger, claims_only, payload
from memmesh.storage import Replica

LIE = 2**62
FRAME = SessionConfig().max_frame


def _wm(m: Member, origin: str) -> int:
    wm = watermarks(m.replica.sync_summary())
    assert wm is not None
    return wm.get(origin, 0)


async def _forged_claim(mesh: Mesh, *, chain: bool) -> None:
    """Carol's writes reach everyone; while carol is away a claim ``{carol: 2**62}``
    with no states is sent to the victim, which takes it but does not pass it on; carol
    writes (away, then back): everything of carol's must reach everyone.  ``chain``:
    the victim's peer hears carol only through the victim."""
    forger = Forger()
    carol, victim, honest = mesh.member("carol"), mesh.member("victim"), mesh.member("honest")
    mallory = mesh.member("mallory", forger=forger)
    await mesh.link(mallory, victim)
    await mesh.link(victim, honest)
    await mesh.link(carol, victim)
    if not chain:
        await mesh.link(carol, honest)
    await mesh.start()
    mesh.canary(carol)
    early = [mesh.write(carol, f"carol's memory {i}") for i in range(3)]
    await mesh.until(lambda: all(m.replica.get(k) is not None
                                 for m in (victim, honest) for k in early), "carol's writes")
    origin = str(carol.inner.origin)
    await mesh.pause(carol)
    forger.next("victim", claims_only({origin: (0, LIE)}))
    await mesh.until(lambda: _wm(victim, origin) == LIE, "the lie to be taken")
    await mesh.pulls(honest, victim)
    assert _wm(honest, origin) == _wm(carol, origin)  # not passed on
    away = [mesh.write(carol, "carol, away")] if chain else []
    await mesh.resume(carol)
    if chain:
        mesh.update(carol, early[0], "carol's memory 0, edited after the lie")
    back = [mesh.write(carol, "carol, back")]
    await mesh.until(lambda: all(m.replica.get(k) is not None
                                 for m in (victim, honest) for k in away + back),
                     "carol's new writes to reach everyone")
    await mesh.assert_promise()


async def test_a_forged_claim_heard_next_to_its_origin_hides_nothing(
        mode: str, tmp_path: Path) -> None:
    """Case 4, where the victim and its peer also hear the origin: its summary (the
    origin is the authority on its own counter) and its pushes of new writes (the lie
    detector) expose the lie."""
    async with Mesh(mode, tmp_path) as mesh:
        await _forged_claim(mesh, chain=False)


async def test_a_forged_claim_relayed_past_its_origin_is_repaired_by_digests(
        mode: str, tmp_path: Path) -> None:
    """Case 4: a payload whose ``through`` claims ``{C: 2**62}`` with no states was
    accepted, stored and passed on to the next replica, and C's writes never reached
    either again; no node compared digests.  Here the next replica hears C only through
    the victim, and C wrote while the lie stood: only digest repair finds those writes
    (C's summary, when the victim hears it, lowers the lie to C's counter)."""
    async with Mesh(mode, tmp_path) as mesh:
        await _forged_claim(mesh, chain=True)


async def test_claims_for_sixty_thousand_made_up_origins_are_capped_and_a_peer_still_joins(
        mode: str, tmp_path: Path) -> None:
    """Case 5: claims for ~60k made-up origins in two frames made the victim's summary
    outgrow the 4 MiB frame cap; at its next link ``Session.start_sync`` raised inside
    the node's nursery: the node died, and died again after every restart."""
    async with Mesh(mode, tmp_path) as mesh:
        forger, victim, honest, mallory = await mesh.attack()
        mesh.write(honest, "written before the flood")
        for frame in range(2):
            made_up = {f"{frame}-{i:06d}-".ljust(128, "x"): (0, 7) for i in range(30_000)}
            forger.next("victim", claims_only(made_up))
        mesh.write(mallory, "a write of mallory's: it pushes")
        await mesh.until(lambda: mesh.refusals(victim)["claims-cap"] >= 2,
                         "both frames of claims to be judged")
        assert len(victim.replica.sync_summary()) < 0.75 * FRAME
        late = mesh.member("late")  # a new link to the victim works, and syncs
        await mesh.link(late, victim)
        await mesh.start(late)
        await mesh.assert_promise()
        assert all(len(m.replica.sync_summary()) < 0.75 * FRAME for m in mesh.honest())


def test_a_table_full_of_made_up_origins_still_names_and_ships_the_real_ones(
        tmp_path: Path) -> None:
    """Found by case 5 above: once made-up origins (counter 7) filled the watermark
    table, summaries named only them (the highest counters were kept), and every
    payload budgeted room for claims about all of them, so it carried one state; a
    peer was shipped the same state again and again and never got the rest."""
    with Replica.open(tmp_path / "v", replica_id="victim") as victim, \
            Replica.open(tmp_path / "m", replica_id="mallory") as mallory, \
            Replica.open(tmp_path / "p", replica_id="peer") as peer:
        mallory.add("a memory of mallory's")
        victim.sync_apply(mallory.sync_changes(victim.sync_summary()))
        mine = [victim.add(f"memory {i} of the victim") for i in range(50)]
        for frame in range(2):
            made_up = {f"{frame}-{i:06d}-".ljust(128, "x"): (0, 7) for i in range(30_000)}
            victim.sync_apply(payload("mallory", through=made_up))
        wm = watermarks(victim.sync_summary())
        assert wm is not None and {victim.origin, mallory.origin} <= set(wm)
        for _ in range(3):  # a pull of a few chunks, as a node's would be
            peer.sync_apply(victim.sync_changes(peer.sync_summary(), max_bytes=256 * 1024))
        assert all(peer.get(m) is not None for m in mine)
        assert peer.state_digest() == victim.state_digest()


def test_a_summary_older_than_the_origin_s_events_held_here_lowers_no_watermark(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by the suite's nodes runs: a summary naming its sender's origin (``me``)
    may be older than events of that origin the receiver already holds (a push or a
    continuation chunk is computed from the peer's last summary; a relay may deliver
    newer events first).  The receiver took the stale counter for the origin's own
    word, "lowered" a true watermark with a WARNING about a false claim, in honest
    operation, and had those events shipped again."""
    with Replica.open(tmp_path / "c", replica_id="carol") as carol, \
            Replica.open(tmp_path / "v", replica_id="victim") as victim:
        carol.add("carol's first")
        victim.sync_apply(carol.sync_changes(victim.sync_summary()))
        carol_said = carol.sync_summary()  # what the victim's session keeps for carol
        carol.add("carol's second")
        victim.sync_apply(carol.sync_changes(victim.sync_summary()))
        origin = str(carol.origin)
        assert _wm_of(victim, origin) == 2
        victim.add("the victim's own write, pushed to carol")
        for summary in (carol_said, push_summary(carol_said, victim.sync_summary(), "victim")):
            assert summary is not None
            victim.sync_changes(summary)
        assert _wm_of(victim, origin) == 2
        assert not [r for r in caplog.records if "false claim" in r.getMessage()]


def _wm_of(replica: Replica, origin: str) -> int:
    wm = watermarks(replica.sync_summary())
    assert wm is not None
    return wm.get(origin, 0)


def test_a_forged_claim_taken_by_one_replica_is_not_passed_on(tmp_path: Path) -> None:
    """Found by the byzantine scenario: a claim ``{C: 2**62}`` taken by one replica went
    out again in that replica's own claims, so it spread from replica to replica; C's
    summary lowered it wherever C was heard, and the next pull from a replica still
    holding it brought it back: the lie never died out (each lowering a WARNING), and
    everyone it reached missed C's writes until repair found them.  A replica now
    claims an origin only as far as the events of it it holds (its own origins: its
    counters), so a lie stays with the replica that took it."""
    with Replica.open(tmp_path / "c", replica_id="carol") as carol, \
            Replica.open(tmp_path / "v", replica_id="victim") as victim, \
            Replica.open(tmp_path / "r", replica_id="relay") as relay:
        mid = carol.add("carol's first")
        carol.update(mid, "carol's first, edited")  # event 1 is superseded by event 2
        carol.add("carol's private note", tier="private")  # event 3 never leaves carol
        for dst in (victim, relay):
            dst.sync_apply(carol.sync_changes(dst.sync_summary()))
        origin = str(carol.origin)
        assert _wm_of(relay, origin) == 3  # carol's own claim: its counter
        victim.sync_apply(payload("mallory", through={origin: (3, LIE)}))
        assert _wm_of(victim, origin) == LIE  # taken (only carol can say it is false)
        relay.sync_apply(victim.sync_changes(relay.sync_summary()))
        assert _wm_of(relay, origin) == 3  # not passed on
        fresh = Replica.open(tmp_path / "f", replica_id="fresh")
        with fresh:
            fresh.sync_apply(victim.sync_changes(fresh.sync_summary()))
            assert _wm_of(fresh, origin) == 2  # as far as the events the victim holds
            assert fresh.get(mid) is not None

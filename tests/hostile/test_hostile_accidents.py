"""Honest accidents that used to break the promise (issue 11, cases 1 and 8): a
replica directory restored from a backup while the original lives on, and a member
whose clock is a year ahead, later fixed.  Against bare replicas and real trio nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_mesh import Mesh
from hostile_peer import wall_ms

from memmesh.simulations.invariants import holds
from memmesh.storage import WritesFencedError

YEAR_MS = 365 * 24 * 3600 * 1000


async def test_a_restored_backup_and_its_original_both_write_and_every_write_survives(
        mode: str, tmp_path: Path) -> None:
    """Case 1: a directory restored from a backup (or a cloned VM image) while the
    original lives on: both copies minted the same dots, a replica that heard one copy
    first never got the other's writes, and anti-entropy never repaired it."""
    async with Mesh(mode, tmp_path) as mesh:
        agent, third, fourth = mesh.member("agent"), mesh.member("third"), mesh.member("fourth")
        await mesh.link(agent, third)
        await mesh.link(third, fourth)
        await mesh.start()
        shared = mesh.write(agent, "written before the backup")
        await mesh.until(lambda: fourth.replica.get(shared) is not None, "the first write")
        restored = mesh.copy(agent, "agent-restored")  # same replica id, its own life now
        await mesh.link(restored, fourth)  # third hears the original first, fourth the copy
        await mesh.start(restored)
        for i in range(3):
            mesh.write(agent, f"the original's write {i}")
            mesh.write(restored, f"the restored copy's write {i}")
        mesh.update(agent, shared, "edited by the original")
        mesh.update(restored, shared, "edited by the restored copy")
        assert agent.inner.origin != restored.inner.origin  # two lineages, no shared dot
        await mesh.assert_promise()
        record = third.replica.get(shared)
        assert record is not None and record.conflicted  # both edits stand, side by side
        assert {v.text for v in record.versions} == {"edited by the original",
                                                     "edited by the restored copy"}


async def test_a_member_a_year_ahead_relays_others_and_is_heard_once_its_clock_is_fixed(
        mode: str, tmp_path: Path) -> None:
    """Case 8: a member whose clock is a year ahead (broken NTP) had its *whole* payload
    refused, the third-party memories it relays included, and kept minting future
    stamps after its clock was fixed: the fleet never converged.  Now its peers refuse
    its own future-stamped keys only; a node finds out from its peers' HELLOs and fences
    its writes; reopened with a fixed clock, its new writes reach everyone."""
    async with Mesh(mode, tmp_path) as mesh:
        left, right = mesh.member("left"), mesh.member("right")
        skewed = mesh.member("skewed", clock=lambda: wall_ms() + YEAR_MS)
        await mesh.link(left, skewed)  # left and right hear each other only through it
        await mesh.link(skewed, right)
        future = mesh.write(skewed, "written a year ahead, before it could know")
        await mesh.start()
        relayed = [mesh.write(left, f"left's memory {i}") for i in range(3)]
        await mesh.until(lambda: all(right.replica.get(k) is not None for k in relayed),
                         "third-party memories relayed by the member ahead")
        await mesh.until(lambda: mesh.refusals(right)["clock-ahead"] >= 1
                         and mesh.refusals(left)["clock-ahead"] >= 1,
                         "its own future-stamped key refused, on its own")
        if mode == "nodes":
            assert skewed.node is not None
            await mesh.until(lambda: skewed.node is not None
                             and skewed.node.status().write_fence is not None,
                             "the member ahead to fence its own writes")
            with pytest.raises(WritesFencedError):
                skewed.replica.add("a stamp a year ahead")
        await mesh.reopen(skewed, clock=None)  # NTP fixed, the process restarted
        fixed = mesh.write(skewed, "written after the fix")
        await mesh.until(lambda: left.replica.get(fixed) is not None
                         and right.replica.get(fixed) is not None,
                         "its new writes to reach everyone")
        # left and right converge; the future-stamped write stays on its writer (and is
        # refused elsewhere) until real time reaches its stamp: docs/faulty-members.md
        await mesh.assert_promise([left, right])
        assert all(holds(m.replica, fixed, [d for _, d in mesh.acked[fixed]])
                   for m in (left, right))
        assert skewed.replica.get(future) is not None and left.replica.get(future) is None

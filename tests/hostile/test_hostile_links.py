"""Hostile links against a real trio node (issue 11, cases 9 and 10): what a cluster-key
holder can do with connections rather than with data.  Nodes only: these cases are
about links, which bare replicas do not have."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from gossip_procs import KEY
from hostile_mesh import CANARY, Mesh
from hostile_peer import RawPeer, hoard, pipelined_pull

from memmesh.storage import PeerScope

MiB = 1024 * 1024


async def test_a_second_link_under_a_restricted_peer_s_id_is_refused_and_never_serves(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Case 9: a peer restricted to user bob opened a second link under its own id;
    the node neither registered nor refused it, the link stayed unscoped (= allowed
    everything) and answered pulls: alice's canary memory was received."""
    bob = PeerScope(users=frozenset({"bob"}))
    async with Mesh("nodes", tmp_path) as mesh:
        victim = mesh.member("victim", acl={"bob-agent": bob, "honest": None},
                             acl_default=PeerScope(users=frozenset()))
        honest = mesh.member("honest")
        await mesh.link(honest, victim)
        await mesh.start()
        for_bob = mesh.write(honest, "for bob: the meeting moved to noon", user_id="bob")
        canary = mesh.canary(honest)
        await mesh.until(lambda: victim.replica.get(for_bob) is not None
                         and victim.replica.get(canary) is not None, "the memories")
        assert victim.node is not None
        port = victim.node.port
        async with trio.open_nursery() as nursery:
            first = await RawPeer.connect(port, "bob-agent", KEY)
            nursery.start_soon(first.serve)
            await mesh.until(lambda: first.opened and "bob-agent" in victim.node.peers,
                             "bob's first link")
            second = await pipelined_pull(port, "bob-agent", KEY)  # HELLO + SYN at once
            first.pull()
            await mesh.until(lambda: b"the meeting moved to noon" in first.received,
                             "bob's own memory on his one link")
            assert b"duplicate" in second  # REJECT duplicate, then the node hung up
            for got in (bytes(first.received), second):
                assert CANARY.encode() not in got and b"tangerine" not in got
            assert victim.node.policy.counters["refused-link:duplicate"] == 1
            assert any("rejected (duplicate)" in r.getMessage() and r.levelno == logging.WARNING
                       for r in caplog.records)
            await mesh.assert_promise()
            nursery.cancel_scope.cancel()


async def test_hoarding_links_and_silent_handshakes_do_not_keep_an_honest_peer_out(
        tmp_path: Path) -> None:
    """Case 10: 100 links of a key holder each holding part of a 4 MiB frame, and
    connections that never finish the TLS handshake: the victim's memory grew without
    bound, a legitimate node needed 21.5 s to join, and accept() ran out of files.
    (Scaled for CI: the victim's caps are small, so the same rules act on less data.)"""
    budget = 8 * MiB
    async with Mesh("nodes", tmp_path) as mesh:
        victim = mesh.member("victim", max_handshakes=16, max_buffered=budget)
        honest = mesh.member("honest")
        await mesh.link(honest, victim)
        await mesh.start()
        mesh.canary(honest)
        for i in range(50):
            mesh.write(victim, f"memory {i} of the victim")
        assert victim.node is not None
        port = victim.node.port
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(200)]
        hoarders: list[trio.abc.Stream | None] = []
        for start in range(0, 100, 8):  # a few at a time through the handshake gate
            async with trio.open_nursery() as nursery:
                for i in range(start, min(100, start + 8)):
                    nursery.start_soon(_collect, hoarders, port, f"mallory-{i:03d}")
        await mesh.until(lambda: victim.node is not None
                         and victim.node.status().dropped.get("buffered", 0) >= 1
                         and victim.node.status().dropped.get("handshakes", 0) >= 1,
                         "the victim to drop hoarders and stale handshakes")
        joiner = mesh.member("joiner")
        await mesh.link(joiner, victim)
        await mesh.start(joiner)
        await mesh.until(lambda: joiner.replica.state_digest() == victim.replica.state_digest(),
                         "an honest node to join and sync during the attack")
        assert sum(pl.held_bytes for pl in victim.node.policy.links) <= budget
        await mesh.assert_promise()
        for stream in [*silent, *hoarders]:
            if stream is not None:
                await trio.aclose_forcefully(stream)


async def _collect(out: list[trio.abc.Stream | None], port: int, rid: str) -> None:
    out.append(await hoard(port, rid, KEY, 512 * 1024))

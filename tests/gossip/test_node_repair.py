"""Digest repair in a live trio ``Node``: what the operator sees (status, log lines,
``memmesh status``) when a divergence its watermarks could not see is repaired."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from node_helpers import connect, mem_node, wait_for
from test_repair_network import delete_behind_the_journal

from memmesh.gossip import NodeStatus, PeerStatus
from memmesh.integrations.node import format_status
from memmesh.storage import Replica


async def test_a_node_repairs_a_lost_key_and_says_so_in_status_and_log(
        tmp_path: Path, mock_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    mock_clock.autojump_threshold = 0
    caplog.set_level(logging.INFO, logger="memmesh.gossip")
    with Replica.open(tmp_path / "a", replica_id="ra") as ra, \
            Replica.open(tmp_path / "b", replica_id="rb") as rb:
        ids = [ra.add(f"memory {i}") for i in range(20)]
        async with mem_node(ra) as a, mem_node(rb) as b, trio.open_nursery() as nursery:
            connect(nursery, a, b)
            await wait_for(lambda: rb.state_digest() == ra.state_digest())
            delete_behind_the_journal(rb, ids[5])
            await wait_for(lambda: rb.get(ids[5]) is not None)
            st = b.status()
            # the lost key's event was under b's watermark of a's origin: proved false
            assert st.repairs >= 1 and st.repaired == 1 and st.lowered == 1
            peer = st.peers[0]
            assert peer.replica_id == "ra" and peer.repairs >= 1 and peer.repaired == 1
            assert a.status().repaired == 0  # a lacked nothing
            lines = [r for r in caplog.records if "diverged" in r.getMessage()]
            assert len(lines) == 1 and lines[0].levelno == logging.WARNING
            assert lines[0].getMessage().startswith("peer ra: diverged (digest): 1 keys")
            assert not any(r.exc_info for r in caplog.records)
            nursery.cancel_scope.cancel()


def test_memmesh_status_shows_repairs_and_each_peers_trouble() -> None:
    peer = PeerStatus("liar", ("10.0.0.7", 7700), "in", time.time(), None, 0, 10, 20, 3,
                      refusals={"clock-ahead": 2}, errors=1, last_error="invalid-changes",
                      repairs=4, repaired=3, false_claims=1)
    honest = PeerStatus("honest", None, "out", time.time(), None, 0, 10, 20, 3)
    status = NodeStatus("A", "127.0.0.1", 7700, True, (peer, honest), 0, 0, 0, 0, 0,
                        repairs=5, repaired=3, lowered=1).as_dict()
    status["written_at"] = time.time()
    text = format_status(status)
    assert "digest repair: 5 repairs, 3 keys repaired, 1 watermarks proved false" in text
    lines = text.splitlines()
    under = lines[lines.index(next(x for x in lines if x.startswith("liar"))) + 1]
    assert under.strip() == ("refused clock-ahead: 2; errors 1 (last: invalid-changes); "
                             "false claims 1; repaired 3 keys in 4 repairs")
    assert lines[-1].startswith("honest")  # nothing went wrong: no line under it
    assert "digest repair" not in format_status({**status, "repairs": 0, "lowered": 0})

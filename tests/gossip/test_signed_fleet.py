"""A fleet on credentials with one compromised member, through real nodes (issue 16):
the member's writes inside its grant spread, its forged writes for another user reach no
other replica, directly or through an honest relay, and the relay counts the refusal.
Real sockets on 127.0.0.1; every wait is on a condition."""

from __future__ import annotations

import time
from pathlib import Path

from node_helpers import wait_for

from memmesh.gossip import Node
from memmesh.storage import Replica
from memmesh.trust import Authority, Grant, MemberIdentity

DAY = 86_400_000
NOW = int(time.time() * 1000)


def _member(authority: Authority, rid: str, write: str) -> MemberIdentity:
    return authority.issue(rid, read=(Grant(),), write=(Grant.parse(write),),
                           expires_ms=NOW + DAY, now_ms=NOW)


def _node(replica: Replica, identity: MemberIdentity, **kw: object) -> Node:
    return Node(replica, identity=identity, mdns=False, remember_peers=False, interval=0.1,
                **kw)  # type: ignore[arg-type]


async def test_a_compromised_members_forged_writes_reach_no_other_replica(
        tmp_path: Path) -> None:
    authority = Authority.create("acme")
    ids = {rid: _member(authority, rid, write) for rid, write in (
        ("mallory", "users=bob"), ("relay", "all"), ("alice-laptop", "users=alice"))}
    replicas = {rid: Replica.open(tmp_path / rid, identity=identity)
                for rid, identity in ids.items()}
    m, r, a = replicas["mallory"], replicas["relay"], replicas["alice-laptop"]
    try:
        signing = m._memory._signing  # compromised code: it signs whatever it writes
        assert signing is not None
        signing.authorize = lambda *args, **kwargs: None  # type: ignore[method-assign]
        forged = m.add("FORGED: alice agreed to wire the funds", user_id="alice")
        honest = m.add("bob prefers tea", user_id="bob")
        async with _node(r, ids["relay"]) as relay, \
                _node(m, ids["mallory"], seeds=[("127.0.0.1", relay.port)]), \
                _node(a, ids["alice-laptop"], seeds=[("127.0.0.1", relay.port)]):
            # the honest write travels mallory -> relay -> alice ...
            await wait_for(lambda: a.get(honest) is not None, 60)
            # ... and the relay has judged (and refused) the forged one by then
            await wait_for(lambda: relay.status().refusals.get("no-grant", 0) >= 1, 60)
            assert r.get(forged) is None and a.get(forged) is None
        assert m.get(forged) is not None  # only on the compromised replica
    finally:
        for replica in replicas.values():
            replica.close()

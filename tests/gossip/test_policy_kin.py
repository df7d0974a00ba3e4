"""Scope-aware partner choice (issue 17, ``gossip/protocol/_kin.py``), sans-IO: a
restricted member's rounds pull from peers whose scope overlaps what it is served,
except a small exploring share; an unrestricted member still picks uniformly."""

from __future__ import annotations

import random
from collections import Counter

from gossip_fakes import EPOCH_MS

from memmesh.gossip.protocol import PolicyConfig, SyncPolicy
from memmesh.gossip.protocol._kin import KinChoice, overlaps
from memmesh.storage import PeerScope
from memmesh.trust import parse_grants

FP = b"\x00" * 16
MEMBERS = [f"n{i:02d}" for i in range(50)]


def _user(i: int) -> PeerScope:
    return PeerScope(apps=frozenset({"fleet"}), users=frozenset({f"u{i % 10}"}))


def _scope_of(peer: str) -> PeerScope:
    return _user(int(peer[1:]))


def _picks(served: object, *, explore: float = 0.1, rounds: int = 300) -> Counter[str]:
    """Which members ``n00``'s rounds dial (no links: every pick is a dial)."""
    policy = SyncPolicy("n00", fingerprint=FP, rng=random.Random(3), now=0.0,
                        config=PolicyConfig(kin_explore=explore), scope_of=_scope_of)
    policy.kin.served(served)
    picks: Counter[str] = Counter()
    for _ in range(rounds):
        peer = policy.round(policy.next_round, EPOCH_MS, candidates=MEMBERS)
        assert peer is not None
        picks[peer] += 1
    return picks


def test_a_restricted_member_pulls_mostly_from_peers_of_its_own_scope() -> None:
    picks = _picks(_user(0))
    kin = {p for p in MEMBERS[1:] if int(p[1:]) % 10 == 0}
    assert set(picks) & kin == kin  # every kin is used
    strangers = sum(n for p, n in picks.items() if p not in kin)
    assert 0 < strangers <= 0.2 * 300  # explore: about 10% of rounds, wherever they go


def test_without_exploring_a_restricted_member_pulls_only_from_kin() -> None:
    picks = _picks(_user(3), explore=0.0)
    assert {int(p[1:]) % 10 for p in picks} == {3}


def test_an_unrestricted_or_untold_member_picks_among_all_peers() -> None:
    for served in (None, PeerScope()):
        picks = _picks(served)
        assert len({int(p[1:]) % 10 for p in picks}) == 10
        assert max(picks.values()) < 30  # no preference: about 6 each


def test_with_no_kin_in_the_pool_the_round_picks_among_all() -> None:
    choice = KinChoice(explore=0.0)
    choice.served(PeerScope(users=frozenset({"nobody"})))
    pool = MEMBERS[1:]
    picks = {choice.pick(pool, _scope_of, random.Random(i)) for i in range(100)}
    assert len(picks) > 10


def test_scopes_overlap_when_some_key_could_lie_in_both() -> None:
    alice = PeerScope(users=frozenset({"alice"}))
    crm = PeerScope(apps=frozenset({"crm"}))
    assert overlaps(alice, crm)  # alice's crm memories
    assert not overlaps(alice, PeerScope(users=frozenset({"bob"})))
    assert overlaps(alice, None) and overlaps(None, alice)
    granted = PeerScope().restricted_to(parse_grants(["users=bob", "apps=web;users=-"]))
    assert not overlaps(alice, granted)
    assert overlaps(PeerScope(users=frozenset({"bob", "carol"})), granted)
    assert overlaps(alice, "an opaque scope")  # unknown kinds are never excluded

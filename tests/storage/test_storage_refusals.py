"""One bad key never blocks the rest of a payload (issue 11, cases 7 and 8; deliverable 5).

Each refused key state is skipped and reported in ``ApplyResult.refused`` with a stable
reason; the other states apply; the payload's claims never vouch for a refused key, so
it is shipped again and applies once it is acceptable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import START_MS, sync_once, ticking

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.crdt.keystate import KeyState
from memmesh.storage import Replica
from memmesh.storage._digest import state_key
from memmesh.storage._keycodec import encode
from memmesh.storage._keystore import load

YEAR_MS = 365 * 24 * 3600 * 1000


def _state(replica: Replica, key: str) -> KeyState:
    with replica._env.read() as txn:
        _, _, state = load(txn, key)
    assert state is not None
    return state


def _with_states(payload: bytes, states: list[bytes]) -> bytes:
    plain = dict(unpackb(payload))  # type: ignore[arg-type]
    return packb(dict(plain, states=tuple(states) + tuple(plain["states"])))


def test_a_poisoned_set_element_is_refused_alone_and_the_key_stays_usable(
        tmp_path: Path) -> None:
    """Case 7: ``True`` as a set element used to be accepted, stored, and then failed
    every later merge of the key (local set_add, every payload carrying it)."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "c", replica_id="rc", clock=clock) as c:
        a.set_add("tags", "x")
        honest = a.add("an honest memory")
        plain = list(unpackb(encode(_state(a, "tags"))))  # type: ignore[arg-type]
        plain[5] = ((True, plain[5][0][1]),)
        payload = dict(unpackb(a.sync_changes(c.sync_summary())))  # type: ignore[arg-type]
        states = [packb(tuple(plain)) if b"tags" in s else s for s in payload["states"]]
        result = c.sync_apply(packb(dict(payload, states=tuple(states))))
        assert [(r.key, r.reason) for r in result.refused] == [("tags", "invalid")]
        assert c.get(honest) is not None
        c.set_add("tags", "local")  # the key is not poisoned
        sync_once(a, c)  # and honest payloads carrying it apply
        assert c.set_members("tags") == {"x", "local"}


def test_a_member_a_year_ahead_has_its_own_keys_refused_and_its_relays_applied(
        tmp_path: Path) -> None:
    """Case 8: one key stamped a year ahead used to get the whole payload refused,
    third-party memories the member relays included."""
    clock = ticking()
    with Replica.open(tmp_path / "h", replica_id="honest", clock=clock) as honest, \
            Replica.open(tmp_path / "f", replica_id="ahead",
                         clock=ticking(START_MS + YEAR_MS)) as ahead, \
            Replica.open(tmp_path / "v", replica_id="victim", clock=clock) as victim:
        relayed = [honest.add(f"honest fact {i}") for i in range(5)]
        sync_once(honest, ahead)
        future = ahead.add("written a year ahead")
        result = victim.sync_apply(ahead.sync_changes(victim.sync_summary()))
        assert [(r.key, r.reason) for r in result.refused] == [(future, "clock-ahead")]
        assert all(victim.get(m) is not None for m in relayed)
        assert result.through.get(honest.origin) == 5  # claims for the relayed origin stand
        assert ahead.origin not in result.through  # but none vouches for the refused key
        # once the victim's clock reaches the stamp, the same exchange delivers it
        clock.now_ms += YEAR_MS
        sync_once(ahead, victim)
        assert victim.get(future) is not None


def test_a_state_that_does_not_decode_is_refused_and_the_payload_s_claims_are_dropped(
        tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        kept = a.add("kept")
        payload = _with_states(a.sync_changes(b.sync_summary()), [b"\x96garbage"])
        result = b.sync_apply(payload)
        assert [(r.key, r.reason) for r in result.refused] == [(None, "invalid")]
        assert b.get(kept) is not None
        assert result.through == {}  # what the broken state carried is unknown


def test_a_join_that_fails_refuses_that_key_only(tmp_path: Path) -> None:
    """Defence in depth: a join (or a corrupt local state) that raises inside the write
    transaction refuses its key and applies the rest."""
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        first = a.add("first")
        sync_once(a, b)
        a.update(first, "first, updated")
        second = a.add("second")
        skey = state_key(first)
        b._env.write(lambda txn: txn.put("state", skey, b"\x96corrupt"))
        result = b.sync_apply(a.sync_changes(b.sync_summary()))
        assert [(r.key, r.reason) for r in result.refused] == [(first, "join-failed")]
        assert b.get(second) is not None
        assert result.through.get(a.origin, 0) < 2  # the update (a, 2) is not vouched for


def test_the_envelope_is_still_all_or_nothing(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        a.add("x")
        plain = dict(unpackb(a.sync_changes(b.sync_summary())))  # type: ignore[arg-type]
        digest = b.state_digest()
        for broken in (dict(plain, v=2), dict(plain, rid=7), dict(plain, through={"o": 3}),
                       dict(plain, states=[b"x", 3])):
            with pytest.raises(DecodeError):
                b.sync_apply(packb(broken))
        assert b.state_digest() == digest

"""Retired origins (issue 17, deliverable 3): an origin that will mint no more leaves the
summaries and watermark rows of every replica that holds it in full, and nothing is
lost, re-shipped, or vouched for that a replica lacks (docs/internals.md, "Retired
origins"; docs/faulty-members.md, "Forged retirement entries")."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from retired_helpers import forge
from storage_helpers import START_MS, sync_once, sync_pair, ticking

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.gossip.protocol._summary import advance_summary, push_summary
from memmesh.storage import Replica
from memmesh.storage import _retired as rt
from memmesh.storage._retiring import EARLIER_QUIET_MS
from memmesh.storage.wire import MAX_RETIRED_PER_PAYLOAD


def wm(r: Replica) -> dict[str, int]:
    summary: dict[str, Any] = unpackb(r.sync_summary())  # type: ignore[assignment]
    out: dict[str, int] = summary["wm"]
    return out


def rows(r: Replica, origin: str) -> list[bytes]:
    """The watermark rows (complete and scoped) ``r`` keeps for ``origin``."""
    with r._env.read() as txn:
        return [k for prefix in (b"wm:", b"wq:") for k, _ in txn.prefix("meta", prefix)
                if k.endswith(origin.encode())]


def entry(r: Replica, origin: str) -> int:
    with r._env.read() as txn:
        return rt.retired(txn, origin)


def states(payloads: list[bytes]) -> int:
    return sum(len(unpackb(p)["states"]) for p in payloads)  # type: ignore[index]


def leaver(opened: Callable[..., Replica], name: str, writes: int,
           *holders: Replica) -> tuple[str, list[str]]:
    """A member that writes ``writes`` memories, syncs them to ``holders``, retires its
    origin, ships the entry to the first holder and leaves; its origin and keys."""
    r = opened(name)
    keys = [r.add(f"{name} {i}", user_id="u") for i in range(writes)]
    origin = r.origin
    assert origin is not None
    for holder in holders:
        sync_once(r, holder)
    assert r.retire_origin() == writes
    if holders:
        sync_once(r, holders[0])
    r.close()
    return origin, keys


def test_a_retired_origin_leaves_the_summary_and_its_watermark_rows(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    origin, keys = leaver(opened, "a", 3, b, c)
    assert wm(b) == {} and rows(b, origin) == []  # b got the entry: it holds a through 3
    assert wm(c) == {origin: 3}  # c has not heard yet
    first = sync_once(b, c)  # c lists a at its final counter: b ships the entry
    assert states(first) == 0  # nothing re-shipped
    assert wm(c) == {} and rows(c, origin) == []
    assert unpackb(first[0])["retired"] == {origin: 3}  # type: ignore[index]
    assert "retired" not in unpackb(b.sync_changes(c.sync_summary()))  # type: ignore[operator]
    assert all(c.get(k) is not None for k in keys)
    assert b.state_digest() == c.state_digest()


def test_a_new_empty_joiner_gets_every_key_written_by_retired_origins_once(
        opened: Callable[..., Replica]) -> None:
    b = opened("b")
    written = [leaver(opened, f"m{i}", 2, b) for i in range(5)]
    assert wm(b) == {}
    joiner = opened("j")
    payloads = sync_once(b, joiner)
    keys = [k for _, ks in written for k in ks]
    assert all(joiner.get(k) is not None for k in keys)
    assert states(payloads) == len(keys)  # each key once, none again
    assert wm(joiner) == {}  # the table and the claims came with the keys
    assert all(rows(joiner, origin) == [] for origin, _ in written)
    assert states(sync_once(b, joiner)) == 0
    assert joiner.state_digest() == b.state_digest()


def test_a_revived_origin_is_listed_again_and_served(
        opened: Callable[..., Replica]) -> None:
    a, b = opened("a"), opened("b")
    a.add("one", user_id="u")
    a.add("two", user_id="u")
    sync_once(a, b)
    assert a.retire_origin() == 2
    sync_once(a, b)
    origin = a.origin
    assert origin is not None and origin not in wm(b)
    late = a.add("written after the retirement", user_id="u")  # the origin is revived
    payloads = sync_once(a, b)
    assert states(payloads) == 1 and b.get(late) is not None
    assert wm(b) == {origin: 3}  # beyond its entry: listed again


def test_a_peer_with_a_stale_table_converges_in_a_bounded_number_of_exchanges(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    leaver(opened, "d", 1, b, c)
    sync_once(b, c)  # both hold a table with d in it
    assert wm(c) == {}
    origin, keys = leaver(opened, "a", 2, b)  # only b ever heard of a
    assert origin not in wm(b) and origin not in wm(c)
    shipped = 0
    for _ in range(3):  # c's table lacks a: read optimistically, then served
        payload = b.sync_changes(c.sync_summary())
        shipped += len(unpackb(payload)["states"])  # type: ignore[index]
        c.sync_apply(payload)
        if all(c.get(k) is not None for k in keys) and origin not in wm(c):
            break
    else:
        pytest.fail("c did not converge in 3 exchanges")
    assert shipped == len(keys)
    assert rows(c, origin) == [] and c.state_digest() == b.state_digest()


def test_a_claim_based_on_the_reading_rule_is_refused_by_a_replica_that_lacks_the_events(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    leaver(opened, "d", 1, b, c)
    sync_once(b, c)
    origin, keys = leaver(opened, "a", 2, b)
    payload: dict[str, Any] = unpackb(b.sync_changes(c.sync_summary()))  # type: ignore[assignment]
    # forge: the optimistic reading's base (2) with a claim beyond it, as if a wrote more
    payload["through"] = {origin: (2, 5)}
    result = c.sync_apply(packb(payload))
    assert result.through == {}  # the no-gap rule: c holds nothing of a
    assert all(c.get(k) is None for k in keys)


def test_malformed_retirement_fields_are_refused_whole_and_change_nothing(
        opened: Callable[..., Replica]) -> None:
    a, b = opened("a"), opened("b")
    a.add("x", user_id="u")
    sync_once(a, b)
    good: dict[str, Any] = unpackb(a.sync_changes(b.sync_summary()))  # type: ignore[assignment]
    before = (b.sync_summary(), b.state_digest())
    for bad in ({"a#x": 0}, {"a#x": -1}, {"": 1}, {"a\x00": 1}, [("a#x", 1)], {"a#x": "1"},
                {f"o{i}": 1 for i in range(MAX_RETIRED_PER_PAYLOAD + 1)}):
        with pytest.raises(DecodeError):
            b.sync_apply(packb({**good, "retired": bad}))
    assert (b.sync_summary(), b.state_digest()) == before
    summary: dict[str, Any] = unpackb(b.sync_summary())  # type: ignore[assignment]
    for fingerprint in (b"", b"\x00" * 191, b"\x00" * 193, 7, "x" * 192):
        with pytest.raises(DecodeError):
            a.sync_changes(packb({**summary, "rt": fingerprint}))


def test_forged_entries_never_hide_events_a_replica_lacks(
        opened: Callable[..., Replica]) -> None:
    a, b, c = opened("a"), opened("b"), opened("c")
    keys = [a.add(f"k{i}", user_id="u") for i in range(3)]
    sync_once(a, b)
    origin = a.origin
    assert origin is not None
    forge(b, {origin: 1})  # too low: b holds 3, keeps listing it
    assert wm(b)[origin] == 3
    forge(c, {origin: 99})  # never reached: c lists the origin explicitly, at 0
    assert wm(c)[origin] == 0
    sync_once(b, c)
    assert all(c.get(k) is not None for k in keys)
    assert wm(c)[origin] == 3  # 3 is below the forged 99: still listed, still served


def test_the_table_is_capped_and_raises_still_apply(
        opened: Callable[..., Replica], monkeypatch: pytest.MonkeyPatch) -> None:
    b = opened("b")
    monkeypatch.setattr(rt, "MAX_RETIRED", 2)
    first = forge(b, {"x#1": 1, "y#1": 1})
    assert first.retired == {"x#1": 1, "y#1": 1}
    result = forge(b, {"x#1": 5, "z#1": 1})
    assert result.retired == {"x#1": 5}
    assert [r.reason for r in result.refused] == ["retired-cap"]


def test_retire_unseen_retires_quiet_origins_at_the_held_mark(
        opened: Callable[..., Replica]) -> None:
    clock = ticking()
    a = opened("a", clock=clock)
    b = opened("b", clock=clock, retire_after=60_000)
    c = opened("c", clock=clock)
    a.add("old news", user_id="u")
    sync_once(a, b)
    sync_once(a, c)
    origin = a.origin
    assert origin is not None
    assert b.retire_unseen(60_000) == {}  # too recent
    clock.advance(120_000)
    assert wm(b) == {}  # sync_summary ran the retire_after scan: retired at 1
    sync_once(b, c)
    assert wm(c) == {}
    a.add("not dead after all", user_id="u")
    sync_once(a, b)
    assert wm(b) == {origin: 2}


def test_an_earlier_incarnation_is_retired_once_a_peer_holds_it(
        opened: Callable[..., Replica], tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as first:
        first.add("a", user_id="u")
        old = first.origin
    later = ticking(START_MS + EARLIER_QUIET_MS + 1_000)  # the first has been quiet
    again = opened("r", clock=later)
    assert wm(again) == {old: 1}  # nobody else holds it yet
    again.add("b", user_id="u")
    b = opened("b", clock=later)
    sync_pair(again, b)
    assert list(wm(again)) == [again.origin] and list(wm(b)) == [again.origin]


def test_an_earlier_incarnation_still_writing_is_not_retired_until_quiet(
        opened: Callable[..., Replica], tmp_path: Path) -> None:
    # Another Replica object on the node's directory (a writer beside a node) looks like
    # an earlier incarnation; retired while it writes, every write raised the entry and
    # peers that left it out under the lower one were skipped its pushes.
    clock = ticking()
    with Replica.open(tmp_path / "r", replica_id="r", clock=clock) as writer:
        writer.add("a", user_id="u")
        other = writer.origin
    node = opened("r", clock=clock)
    node.add("b", user_id="u")
    b = opened("b", clock=clock)
    sync_pair(node, b)
    assert other in wm(node) and entry(node, other) == 0
    clock.advance(EARLIER_QUIET_MS)
    sync_pair(node, b)
    assert other not in wm(node) and entry(node, other) == 1


def test_a_push_to_a_peer_without_a_table_ships_no_retired_origins_events(
        opened: Callable[..., Replica]) -> None:
    b = opened("b")
    leaver(opened, "a", 3, b)
    assert wm(b) == {}
    mine = b.add("b's own news", user_id="u")
    joiner = opened("j")
    summary = push_summary(joiner.sync_summary(), b.sync_summary(), "b")
    assert summary is not None
    payload = b.sync_changes(summary)
    joiner.sync_apply(payload)
    assert states([payload]) == 1 and joiner.get(mine) is not None


def test_a_flooded_bucket_still_ships_as_a_valid_payload(
        opened: Callable[..., Replica]) -> None:
    b, joiner = opened("b"), opened("j")
    names = (f"f{i}#x" for i in itertools.count())
    flood = [o for o in itertools.islice((n for n in names if rt.bucket(n) == 0),
                                         MAX_RETIRED_PER_PAYLOAD + 10)]
    forge(b, dict.fromkeys(flood[:MAX_RETIRED_PER_PAYLOAD], 1))
    forge(b, dict.fromkeys(flood[MAX_RETIRED_PER_PAYLOAD:], 1))
    payload = b.sync_changes(joiner.sync_summary())
    result = joiner.sync_apply(payload)  # not a DecodeError: cut to the entry cap
    assert len(result.retired) == MAX_RETIRED_PER_PAYLOAD


def test_a_joiner_stops_naming_a_retired_origin_whose_keys_are_all_gone(
        opened: Callable[..., Replica]) -> None:
    clock = ticking()
    a, b = opened("a", clock=clock), opened("b", clock=clock)
    a.add("short-lived", user_id="u", ttl=1)
    sync_once(a, b)
    assert a.retire_origin() == 1
    sync_once(a, b)
    clock.advance(5_000)
    assert b.collect_expired() == 1
    joiner = opened("j", clock=clock)
    sync_once(b, joiner)  # the claim goes through F although no key of a is left
    assert wm(joiner) == {}


def test_a_streamed_join_gets_the_table_once_and_every_key(
        opened: Callable[..., Replica]) -> None:
    b = opened("b")
    written = [leaver(opened, f"m{i}", 3, b) for i in range(6)]
    joiner = opened("j")
    summary: bytes | None = joiner.sync_summary()
    shipped: list[int] = []
    while summary is not None:  # chunks computed from continuation summaries, as a stream
        chunk = b.sync_changes(summary, max_bytes=600)
        shipped.append(len(unpackb(chunk).get("retired") or {}))  # type: ignore[union-attr]
        joiner.sync_apply(chunk)
        summary = advance_summary(summary, chunk)
    # the whole table in the first chunk; later ones at most re-target an entry of an
    # origin a continuation shows at its final counter (the peer, holding the entry,
    # leaves it out), once each
    assert len(shipped) > 2 and shipped[0] == 6 and sum(shipped[1:]) <= 6
    assert all(joiner.get(k) is not None for _, keys in written for k in keys)
    assert wm(joiner) == {}


def test_a_sender_without_the_entry_does_not_reship_what_the_peer_left_out(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    origin, _ = leaver(opened, "a", 2, b, c)  # both hold a; only b has its entry
    assert origin not in wm(b) and origin in wm(c)
    payloads = sync_once(c, b)  # c cannot tell b left a out as retired: it may have
    assert states(payloads) == 0
    sync_once(b, c)  # the other way, c gets the entry
    assert wm(c) == {} and states(sync_once(c, b)) == 0

"""Revocations on the wire are bounded and validated like every other byte from a peer:
a malformed list is a DecodeError that changes nothing; payloads and summaries without
the fields still parse; streamed continuations and pushes do not ship them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from signed_helpers import AUTHORITY, NOW, member, open_member

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.gossip.protocol import advance_summary
from memmesh.storage.wire import (
    MAX_REVOCATION_LEN,
    MAX_REVOCATIONS,
    Changes,
    Summary,
    parse_changes,
    parse_summary,
)


@pytest.mark.parametrize("bad", ["too-many", "oversized", "not-bytes", "empty"])
def test_too_many_or_oversized_revocations_refuse_the_envelope(tmp_path: Path,
                                                                bad: str) -> None:
    with open_member(tmp_path, member("a", "all")) as a, \
            open_member(tmp_path, member("b", "all")) as b:
        a.add("one")
        c = parse_changes(a.sync_changes(b.sync_summary()))
        rev = AUTHORITY.revoke(bytes(16), at_ms=NOW).to_bytes()
        revocations = {"too-many": (rev,) * (MAX_REVOCATIONS + 1),
                       "oversized": (bytes(MAX_REVOCATION_LEN + 1),),
                       "not-bytes": ("x",), "empty": (b"",)}[bad]
        payload = Changes(c.rid, c.scope, c.states, c.through, c.hashes, c.proofs, c.creds,
                          revocations).pack()  # type: ignore[arg-type]
        before = b.state_digest()
        with pytest.raises(DecodeError):
            b.sync_apply(payload)
        assert b.state_digest() == before and b.revocations() == []


@pytest.mark.parametrize("bad", ["too-many", "unsorted", "short-id", "negative", "not-list"])
def test_a_malformed_revoked_list_in_a_summary_is_a_decode_error(bad: str) -> None:
    ids = [i.to_bytes(16, "big") for i in range(3)]
    revoked = {"too-many": tuple((i.to_bytes(16, "big"), 1)
                                 for i in range(MAX_REVOCATIONS + 1)),
               "unsorted": ((ids[1], 1), (ids[0], 1)), "short-id": ((b"x", 1),),
               "negative": ((ids[0], -1),), "not-list": 7}[bad]
    plain = unpackb(Summary("a", {}, bytes(32)).pack())
    plain["revoked"] = revoked
    with pytest.raises(DecodeError):
        parse_summary(packb(plain))


def test_messages_without_the_revocation_fields_still_parse() -> None:
    old = packb({"v": 1, "rid": "a", "scope": None, "states": (), "through": {}})
    assert parse_changes(old).revocations == ()
    assert parse_summary(packb({"v": 1, "rid": "a", "wm": {}, "root": bytes(32)})
                         ).revoked is None


def test_a_streamed_continuation_does_not_ask_for_the_revocations_again(
        tmp_path: Path) -> None:
    with open_member(tmp_path, member("a", "all")) as a, \
            open_member(tmp_path, member("b", "all")) as b:
        a.add_revocation(AUTHORITY.revoke(bytes(16), at_ms=NOW))
        a.add("one")
        summary = b.sync_summary()
        first = a.sync_changes(summary)
        assert len(parse_changes(first).revocations) == 1
        nxt = advance_summary(summary, first)
        assert nxt is not None and parse_summary(nxt).revoked is None
        assert parse_changes(a.sync_changes(nxt)).revocations == ()


def test_revocations_count_against_max_bytes_and_the_rest_follow_next_time(
        tmp_path: Path) -> None:
    with open_member(tmp_path, member("a", "all")) as a, \
            open_member(tmp_path, member("b", "all")) as b:
        for i in range(5):
            a.add_revocation(AUTHORITY.revoke(i.to_bytes(16, "big"), at_ms=NOW,
                                              reason="x" * 400))
        mid = a.add("one")
        payload = a.sync_changes(b.sync_summary(), max_bytes=1000)
        first = parse_changes(payload)
        assert 1 <= len(first.revocations) < 5
        for _ in range(10):
            if len(b.revocations()) == 5 and b.get(mid) is not None:
                break
            b.sync_apply(payload)
            payload = a.sync_changes(b.sync_summary(), max_bytes=1000)
        assert len(b.revocations()) == 5 and b.get(mid) is not None

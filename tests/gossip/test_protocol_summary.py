"""The summary helpers over storage's real formats: what a stream's continuation chunks
and a push are computed against, and when a payload counts as empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.gossip.protocol import advance_summary, changes_empty, watermarks
from memmesh.gossip.protocol._summary import push_summary, summary_root
from memmesh.storage import PeerScope, Replica


def _states(changes: bytes) -> tuple[bytes, ...]:
    states: tuple[bytes, ...] = unpackb(changes)["states"]  # type: ignore[index]
    return states


def test_a_continuation_chunk_neither_relists_hashes_nor_reships_wanted_keys(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        ids = [a.add(f"memory number {i} " + "x" * 60) for i in range(40)]
        wanted = ids[-1]
        first_summary = b.sync_summary(digest=True, want=(wanted,))
        first = a.sync_changes(first_summary, max_bytes=2000)
        assert wanted in {unpackb(s)[2][0] for s in _states(first)}  # type: ignore[index]
        nxt = advance_summary(first_summary, first)
        assert nxt is not None
        plain = unpackb(nxt)
        assert "digest" not in plain and "want" not in plain  # type: ignore[operator]
        second = a.sync_changes(nxt, max_bytes=2000)
        assert "hashes" not in unpackb(second)  # type: ignore[operator]
        assert wanted not in {unpackb(s)[2][0] for s in _states(second)}  # type: ignore[index]


def test_a_push_is_computed_without_the_peers_digest_and_want(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        other = b.add("b's own memory")
        a.add("a's new memory")
        peer = b.sync_summary(digest=True, want=(other,))
        pushed = push_summary(peer, a.sync_summary(), a.replica_id)
        assert pushed is not None
        plain = unpackb(pushed)
        assert "digest" not in plain and "want" not in plain  # type: ignore[operator]
        assert "hashes" not in unpackb(a.sync_changes(pushed))  # type: ignore[operator]


def test_a_restricted_payload_with_nothing_in_it_is_empty_but_a_listing_is_not(
        tmp_path: Path) -> None:
    """A payload's ``scope`` is its envelope, not data: a scoped pull that ships nothing
    used to end with ``more`` and make the puller follow up again and again."""
    bob = PeerScope(users=frozenset({"bob"}))
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        a.add("for alice", user_id="alice")
        b.sync_apply(a.sync_changes(b.sync_summary(), peer=bob))  # the claim passes it
        nothing = a.sync_changes(b.sync_summary(), peer=bob)
        assert unpackb(nothing)["scope"] is not None  # type: ignore[index]
        assert changes_empty(nothing)
        listing = packb(dict(unpackb(nothing), hashes=(("k", bytes(8)),)))  # type: ignore[call-overload]
        assert not changes_empty(listing)


def test_summary_root_reads_the_state_digest_a_summary_was_taken_with(
        tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        a.add("something")
        assert summary_root(a.sync_summary()) == bytes.fromhex(a.state_digest())
        assert summary_root(b"\xc1") is None


def test_the_session_reads_a_summary_exactly_as_storage_does(tmp_path: Path) -> None:
    """One format, one parser: a summary storage refuses is one the session cannot read
    either (it used to derive continuation and push summaries from such a blob)."""
    with Replica.open(tmp_path / "a", replica_id="ra") as a:
        a.add("something")
        good = unpackb(a.sync_summary())
        assert isinstance(good, dict)
        for broken in (dict(good, extra=1), dict(good, wm={"ra": -1}),
                       dict(good, root=b"short"), dict(good, rid=7)):
            blob = packb(broken)
            with pytest.raises(DecodeError):
                a.sync_changes(blob)
            assert watermarks(blob) is None and summary_root(blob) is None
            assert push_summary(blob, a.sync_summary(), "ra") is None

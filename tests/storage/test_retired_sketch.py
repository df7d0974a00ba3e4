"""The retirement table's difference sketch (``rti``, an invertible Bloom lookup table:
Eppstein et al., SIGCOMM 2011): under churn, two members' tables differ both ways in the
same fingerprint buckets, and a payload ships exactly the entries the peer lacks instead
of whole buckets (docs/internals.md, "Retired origins")."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from retired_helpers import forge

from memmesh.crdt import DecodeError, packb, unpackb
from memmesh.gossip.protocol._summary import advance_summary
from memmesh.storage import Replica, _sketch
from memmesh.storage import _retired as rt
from memmesh.storage.wire import retired_term


def ident(origin: str, final: int) -> int:
    return _sketch.ident(retired_term(origin, final))


def in_bucket(b: int, prefix: str, count: int) -> list[str]:
    names = (f"{prefix}{i}#x" for i in itertools.count())
    return list(itertools.islice((n for n in names if rt.bucket(n) == b), count))


def summary(r: Replica) -> dict[str, Any]:
    plain: dict[str, Any] = unpackb(r.sync_summary())  # type: ignore[assignment]
    return plain


def shipped_entries(src: Replica, dst: Replica) -> dict[str, int]:
    payload = src.sync_changes(dst.sync_summary())
    dst.sync_apply(payload)
    entries: dict[str, int] = unpackb(payload).get("retired") or {}  # type: ignore[union-attr]
    return entries


def test_the_sketch_lists_a_small_symmetric_difference_exactly() -> None:
    shared = [ident(f"s{i}#x", 1) for i in range(500)]
    ours = [ident(f"o{i}#x", 2) for i in range(15)]
    theirs = [ident(f"t{i}#x", 3) for i in range(15)]
    mine = _sketch.toggle(_sketch.empty(), shared + ours)
    peer = _sketch.toggle(_sketch.empty(), shared + theirs)
    assert _sketch.difference(mine, peer) == (set(ours) | set(theirs), True)
    assert _sketch.difference(mine, mine) == (set(), True)
    assert _sketch.toggle(_sketch.toggle(mine, ours), ours) == mine


def test_the_sketch_says_so_when_the_difference_is_too_large() -> None:
    entries = {ident(f"o{i}#x", 1) for i in range(200)}
    peeled, whole = _sketch.difference(_sketch.toggle(_sketch.empty(), entries),
                                       _sketch.empty())
    assert not whole and peeled <= entries


def test_tables_differing_both_ways_in_one_bucket_ship_only_the_missing_entries(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    shared = {o: 1 for bucket in range(rt.BUCKETS) for o in in_bucket(bucket, "s", 40)}
    forge(b, shared)
    forge(c, shared)
    only_b = dict.fromkeys(in_bucket(3, "b", 4), 2)
    only_c = dict.fromkeys(in_bucket(3, "c", 3), 5)
    forge(b, only_b)
    forge(c, only_c)
    raised = {next(iter(shared)): 7}  # and one entry b raised since
    forge(b, raised)
    # the old buckets shipped bucket 3 whole (44 entries): neither count is a suffix
    assert shipped_entries(b, c) == only_b | raised
    assert shipped_entries(c, b) == only_c
    assert summary(b)["rt"] == summary(c)["rt"] and summary(b)["rti"] == summary(c)["rti"]
    assert shipped_entries(b, c) == {}


def test_a_difference_too_large_for_the_sketch_falls_back_to_the_buckets(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    forge(b, {f"o{i}#x": 1 for i in range(300)})
    forge(c, {"o0#x": 1})
    shipped_entries(b, c)
    assert summary(b)["rt"] == summary(c)["rt"]


def test_a_sketch_that_does_not_match_the_fingerprint_is_not_trusted(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    entries = {f"o{i}#x": 1 for i in range(20)}
    forge(b, entries)
    forge(c, {"o0#x": 1})
    lying = summary(c)
    lying["rti"] = summary(b)["rti"]  # "I hold what you hold": the fingerprint says not
    payload: dict[str, Any] = unpackb(b.sync_changes(packb(lying)))  # type: ignore[assignment]
    assert set(payload["retired"]) >= set(entries) - {"o0#x"}


def test_malformed_sketches_are_refused_and_change_nothing(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    forge(b, {"o#x": 1})
    forge(c, {"p#x": 1})
    good = summary(c)
    before = (b.sync_summary(), b.state_digest())
    without_rt = {k: v for k, v in good.items() if k != "rt"}
    for bad in ({**good, "rti": b""}, {**good, "rti": good["rti"] + b"\x00"},
                {**good, "rti": "x" * _sketch.SKETCH_BYTES}, {**good, "rti": 7}, without_rt):
        with pytest.raises(DecodeError):
            b.sync_changes(packb(bad))
    assert (b.sync_summary(), b.state_digest()) == before


def test_a_table_written_before_the_sketch_is_sketched_at_its_next_join(
        opened: Callable[..., Replica]) -> None:
    b, fresh = opened("b"), opened("fresh")
    entries = {f"o{i}#x": 1 for i in range(10)}
    forge(b, entries)

    def unsketch(txn: Any) -> None:  # as an older version left it: no sketch rows
        for name in (b"ri", b"rin"):
            txn.delete("meta", name)
        for key, _ in list(txn.prefix("meta", b"rh:")):
            txn.delete("meta", key)

    b._env.write(unsketch)
    assert "rti" not in summary(b) and "rt" in summary(b)
    forge(b, {"late#x": 1})
    forge(fresh, {**entries, "late#x": 1})
    assert summary(b)["rti"] == summary(fresh)["rti"]


def test_a_stream_continuation_folds_the_chunk_entries_into_the_sketch(
        opened: Callable[..., Replica]) -> None:
    b, c = opened("b"), opened("c")
    forge(b, {f"o{i}#x": 1 for i in range(8)})
    forge(c, {"o0#x": 1})
    first = c.sync_summary()
    b.add("so the watermark moves", user_id="u")
    chunk = b.sync_changes(first)
    c.sync_apply(chunk)
    derived = advance_summary(first, chunk)
    assert derived is not None
    assert unpackb(derived)["rti"] == summary(c)["rti"]  # type: ignore[index]

"""The sync wire format (``memmesh.storage.wire``): what is built parses back to itself,
and what storage ships is what the format says."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.storage import PeerScope, Replica
from memmesh.storage.wire import (
    DIGEST_BUCKET_BYTES,
    DIGEST_BUCKETS,
    Changes,
    Summary,
    parse_changes,
    parse_summary,
)

_ids = st.text(st.characters(codec="ascii", min_codepoint=33), min_size=1, max_size=8)
_scopes = st.none() | st.builds(PeerScope, st.none() | st.frozensets(st.none() | _ids),
                                st.none() | st.frozensets(st.none() | _ids, min_size=1))


@settings(max_examples=100)
@given(_ids, st.dictionaries(_ids, st.integers(0, 2**63 - 1)), st.binary(min_size=32,
       max_size=32), st.booleans(), _scopes, st.lists(_ids, max_size=3, unique=True))
def test_a_summary_parses_back_to_what_was_packed(rid: str, wm: dict[str, int], root: bytes,
                                                  digest: bool, scope: PeerScope | None,
                                                  want: list[str]) -> None:
    sums = bytes(range(256)) * (DIGEST_BUCKETS * DIGEST_BUCKET_BYTES // 256)
    summary = Summary(rid, wm, root, me=f"{rid}#inc", digest=(scope, sums) if digest else None,
                      want=tuple(want))
    parsed = parse_summary(summary.pack())
    assert parsed.pack() == summary.pack()
    assert (parsed.rid, parsed.wm, parsed.root, parsed.me, parsed.want) == \
        (rid, wm, root, f"{rid}#inc", tuple(want))


@settings(max_examples=100)
@given(_ids, _scopes, st.lists(st.binary(max_size=8), max_size=3),
       st.dictionaries(_ids, st.tuples(st.integers(0, 5), st.integers(6, 9))))
def test_a_changes_payload_parses_back_to_what_was_packed(
        rid: str, scope: PeerScope | None, states: list[bytes],
        through: dict[str, tuple[int, int]]) -> None:
    changes = Changes(rid, scope, tuple(states), through, (("k", bytes(8)),))
    assert parse_changes(changes.pack()).pack() == changes.pack()


def test_storage_speaks_the_wire_format(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", replica_id="ra") as a, \
            Replica.open(tmp_path / "b", replica_id="rb") as b:
        a.add("hello", user_id="u")
        summary = parse_summary(b.sync_summary(digest=True, want=("x",)))
        assert summary.rid == "rb" and summary.want == ("x",) and summary.digest is not None
        payload = parse_changes(a.sync_changes(b.sync_summary(),
                                               peer=PeerScope(users=frozenset({"u"}))))
        assert payload.rid == "ra" and len(payload.states) == 1
        assert payload.scope == PeerScope(users=frozenset({"u"}))

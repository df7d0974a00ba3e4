"""A replica written by the layout before issue 11 is upgraded when opened."""

from __future__ import annotations

from pathlib import Path

from storage_helpers import sync_once, ticking

from memmesh.storage import PeerScope, Replica
from memmesh.storage._indexes import PEER_TAG
from memmesh.storage._layout import LAYOUT
from memmesh.storage._repair import scope_sums


def _rows(replica: Replica, db: str) -> list[tuple[bytes, bytes]]:
    with replica._env.read() as txn:
        return list(txn.prefix(db, b""))


def _downgrade(replica: Replica) -> None:
    """Rewrite the indexes as layout 1 wrote them: ``origin`` entries ``prio + origin +
    0x00 + counter(8) -> key``, no peer-scope rows, no layout mark."""
    def write(txn):  # type: ignore[no-untyped-def]
        for key, _ in list(txn.prefix("origin", b"")):
            txn.delete("origin", key)
            head = key.index(b"\x00", 1) + 9
            txn.put("origin", key[:head], key[head:])
        for key, _ in list(txn.prefix("scope", PEER_TAG)):
            txn.delete("scope", key)
        txn.delete("meta", b"layout")
    replica._env.write(write)


def test_layout_1_indexes_are_rebuilt_at_open(tmp_path: Path) -> None:
    clock = ticking()
    scope = PeerScope(users=frozenset({"u1"}))
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a:
        ids = [a.add(f"m{i}", user_id=f"u{i % 2}") for i in range(20)]
        a.update(ids[3], "updated")
        a.set_add("tags", "x", user_id="u1")
        origin, peer_rows = _rows(a, "origin"), _rows(a, "scope")
        with a._env.read() as txn:
            sums = scope_sums(txn, scope)
        _downgrade(a)
        assert _rows(a, "origin") != origin
    with Replica.open(tmp_path / "a", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        assert _rows(a, "origin") == origin and _rows(a, "scope") == peer_rows
        with a._env.read() as txn:
            assert scope_sums(txn, scope) == sums and txn.counter(b"layout") == LAYOUT
        sync_once(a, b)
        assert a.state_digest() == b.state_digest()

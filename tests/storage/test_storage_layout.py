"""A replica written by an older layout (before issue 11, before the timeline) is
upgraded when opened."""

from __future__ import annotations

from pathlib import Path

from storage_helpers import sync_once, ticking

from memmesh.crdt import pack_canonical
from memmesh.crdt.keystate import EVENT_OPS, KeyState
from memmesh.storage import PeerScope, Replica
from memmesh.storage._digest import note_change
from memmesh.storage._indexes import PEER_TAG
from memmesh.storage._keycodec import decode, encode
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


def _to_layout_2(replica: Replica) -> None:
    """Rewrite every memory as layout 2 stored it: the state without its timeline
    (format 1) and the history as this replica's own rows, ``key + 0x00 + seq(8) ->
    (op, actor, origin, ts, dot, ctx, text, detail, recorded_at, standing, version)``,
    plus a NOOP row without a dot (layout 2 minted none for it)."""
    def write(txn):  # type: ignore[no-untyped-def]
        seq = 0
        for skey, raw in list(txn.prefix("state", b"")):
            state = decode(raw, check_canonical=False)
            key = state.header.key
            for dot, e in sorted(state.events.items(), key=lambda i: i[1].stamp(i[0])):
                seq += 1
                ts = (e.wall_ms, e.logical, dot.replica)
                version = None if e.version is None else tuple(e.version)[:10]
                row = (EVENT_OPS[e.op], e.actor, dot.replica, ts, (dot.replica, dot.counter),
                       e.ctx, None if e.version is None else e.version.text, e.detail, ts,
                       (), version)
                txn.put("history", key.encode() + b"\x00" + seq.to_bytes(8, "big"),
                        pack_canonical(row))
            seq += 1
            noop = ("NOOP", "bot", "ra", (1, 0, "ra"), None, (), None, {}, (1, 0, "ra"), (),
                    None)
            txn.put("history", key.encode() + b"\x00" + seq.to_bytes(8, "big"),
                    pack_canonical(noop))
            old = encode(KeyState(state.header, state.ctx, state.forgotten, state.body))
            txn.put("state", skey, old)
            note_change(txn, skey, raw, old)
        txn.set_counter(b"layout", 2)
    replica._env.write(write)


def test_layout_2_history_rows_become_the_replicated_timeline_at_open(tmp_path: Path) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as a:
        mid = a.add("one", actor="alice", user_id="u")
        a.update(mid, "two", actor="alice")
        a.update(mid, "three", actor="bob")
        gone = a.add("secret", user_id="u")
        a.forget(gone, actor="alice")
        history, digest = a.history(mid), a.state_digest()
        _to_layout_2(a)
        assert a.state_digest() != digest
    with Replica.open(tmp_path / "a", clock=clock) as a, \
            Replica.open(tmp_path / "b", replica_id="rb", clock=clock) as b:
        assert a.history(mid) == history  # the NOOP row had no dot: left out
        assert [e.op for e in a.history(gone)] == ["FORGET"]
        assert a.state_digest() == digest
        assert _rows(a, "history") == []
        with a._env.read() as txn:
            assert txn.counter(b"layout") == LAYOUT == 3
        sync_once(a, b)
        assert b.history(mid) == history

"""sync_apply's bulk path (keys new to the receiver) writes what the per-key path does."""

from __future__ import annotations

from pathlib import Path

from storage_helpers import sync_once, ticking

from memmesh.storage import Replica

_INDEXES = ("scope", "origin", "expiry", "conflict")


def _db(replica: Replica, name: str) -> list[tuple[bytes, bytes]]:
    with replica._env.read() as txn:
        return list(txn.prefix(name, b""))


def _varied(tmp_path: Path, clock: ticking) -> tuple[Replica, Replica]:
    """Two replicas whose merged state holds every kind of key state."""
    a = Replica.open(tmp_path / "a", replica_id="ra", clock=clock, durable=False)
    b = Replica.open(tmp_path / "b", replica_id="rb", clock=clock, durable=False)
    ids = [a.add(f"fact {i}", user_id=f"u{i % 3}", app_id="app", agent_id="g",
                 metadata={"i": i}) for i in range(12)]
    a.add("short-lived", user_id="u0", ttl=3600)
    a.add("lww", user_id="u1", policy="lww", priority=True)
    a.add("run shared", run_id="r1", tier="shared")
    a.set_add("tags", "x", app_id="app")
    sync_once(a, b)
    a.update(ids[0], "a says")  # concurrent updates: a conflict on every replica
    b.update(ids[0], "b says")
    a.update(ids[1], "updated")
    a.delete(ids[2])
    a.forget(ids[3])
    sync_once(b, a)
    standing = a.get(ids[0])
    assert standing is not None and standing.conflicted
    a.resolve(ids[0], "both", resolver="test", inputs=tuple(v.dot for v in standing.versions))
    b.update(ids[4], "b's edit")
    sync_once(b, a)
    return a, b


def test_bulk_apply_builds_the_same_indexes_digest_and_reads(tmp_path: Path) -> None:
    clock = ticking()
    a, b = _varied(tmp_path, clock)
    fresh = Replica.open(tmp_path / "fresh", replica_id="rf", clock=clock, durable=False)
    payloads = sync_once(a, fresh)  # every key is new to ``fresh``: the bulk path
    assert payloads and fresh.state_digest() == a.state_digest()
    for name in _INDEXES:  # indexes are a pure function of the states
        assert _db(fresh, name) == _db(a, name), name
    for user in ("u0", "u1", "u2"):
        assert fresh.list(user_id=user) == a.list(user_id=user)
    assert [c.id for c in fresh.conflicts()] == [c.id for c in a.conflicts()]
    journal = fresh.changes_since(0, limit=10_000)
    with fresh._env.read() as txn:
        keys = {k[1:].decode() for k, _ in txn.prefix("state", b"")}
    assert {c.memory_id for c in journal.changes} == keys
    assert not any(c.local for c in journal.changes)
    for record in a.list(app_id="app"):
        events = fresh.history(record.id)
        assert events, record.id
        assert events == a.history(record.id)  # the shared timeline, not a local log
        assert {v.dot for v in record.versions} <= {e.dot for e in events}
    for r in (a, b, fresh):
        r.close()


def test_bulk_and_per_key_paths_mix_in_one_apply(tmp_path: Path) -> None:
    clock = ticking()
    a, b = _varied(tmp_path, clock)
    # ``partial`` already holds some keys (per-key join) and lacks the rest (bulk path)
    partial = Replica.open(tmp_path / "partial", replica_id="rp", clock=clock, durable=False)
    sync_once(b, partial)
    sync_once(a, partial)
    assert partial.state_digest() == a.state_digest()
    for name in _INDEXES:
        assert _db(partial, name) == _db(a, name), name
    for r in (a, b, partial):
        r.close()

"""Replica incarnations: a copied, restored or shared directory never reuses a dot, so
no acknowledged write of any copy is lost (issue 11, case 1; Riak kv679)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import sync_once, ticking

from memmesh.crdt import DecodeError, Dot, InvalidArgumentError, packb, unpackb
from memmesh.gossip.protocol._summary import push_summary
from memmesh.merge import Election, arbiter_rank
from memmesh.storage import Replica
from memmesh.storage._keystore import load
from memmesh.storage._retiring import EARLIER_QUIET_MS

# -- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """An acknowledged memory write: the version ``text`` written with ``dot``."""

    key: str
    dot: Dot
    text: str


def _wrote(r: Replica, key: str, text: str) -> Ack:
    """The write of ``text`` to ``key`` that ``r`` just acknowledged."""
    record = r.get(key)
    assert record is not None
    version = max((v for v in record.versions if v.text == text), key=lambda v: v.timestamp)
    return Ack(key, version.dot, text)


def _context(r: Replica, key: str) -> dict[str, int]:
    """The causal context of ``key`` on ``r`` (internals: what the key has seen)."""
    with r._env.read() as txn:
        _, _, state = load(txn, key)
    assert state is not None, f"{key} unknown on {r.path}"
    return dict(state.ctx)


def _assert_holds(r: Replica, acks: list[Ack]) -> None:
    """Every acknowledged write stands on ``r`` under its own dot with its own text, or
    is superseded: its dot is in the key's context."""
    for ack in acks:
        record = r.get(ack.key)
        standing = {} if record is None else {v.dot: v.text for v in record.versions}
        if ack.dot in standing:
            assert standing[ack.dot] == ack.text, \
                f"{ack.dot} on {r.path} holds {standing[ack.dot]!r}, not {ack.text!r}"
        else:
            assert ack.dot.counter <= _context(r, ack.key).get(ack.dot.replica, 0), \
                f"{ack.text!r} ({ack.dot}) never reached {r.path}"


def _hot_backup(r: Replica, dst: Path) -> None:
    """A consistent copy of ``r``'s files while it stays open (LMDB's ``mdb_copy``)."""
    dst.mkdir()
    r._env._env.copy(str(dst))


def _sync_all(replicas: list[Replica], *, max_bytes: int | None, rounds: int = 2) -> None:
    for _ in range(rounds):
        for src, dst in itertools.permutations(replicas, 2):
            sync_once(src, dst, max_bytes=max_bytes)


def _write_on(r: Replica, who: str, shared: str, lww: str) -> list[Ack]:
    """New memories, an update of a memory that existed before the copy, an lww write
    and a set element, all acknowledged by ``r``."""
    acks = []
    for i in range(3):
        text = f"{who} new {i}"
        acks.append(_wrote(r, r.add(text, user_id="u"), text))
    for key, text in ((shared, f"{who} updates the shared memory"),
                      (lww, f"{who} writes the lww memory")):
        r.update(key, text)
        acks.append(_wrote(r, key, text))
    r.set_add("tags", who)
    return acks


@pytest.fixture
def opened() -> Iterator[Callable[..., Replica]]:
    replicas: list[Replica] = []

    def open_(path: Path, **options: Any) -> Replica:
        r = Replica.open(path, **options)
        replicas.append(r)
        return r

    yield open_
    for r in replicas:
        r.close()


# -- the test: a copied directory, both copies write ---------------------------


@pytest.mark.parametrize("max_bytes", [None, 300])
def test_both_copies_of_a_directory_keep_every_write_whatever_the_sync_order(
        tmp_path: Path, opened: Callable[..., Replica], max_bytes: int | None) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as original:
        shared = original.add("before the copy", user_id="u")
        lww = original.add("lww before the copy", policy="lww")
        original.set_add("tags", "before")
        before = [_wrote(original, shared, "before the copy"),
                  _wrote(original, lww, "lww before the copy")]
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a backup, or a cloned VM image
    a = opened(tmp_path / "a", clock=clock)
    b = opened(tmp_path / "b", clock=clock)
    c = opened(tmp_path / "c", replica_id="rc", clock=clock)
    d = opened(tmp_path / "d", replica_id="rd", clock=clock)
    assert a.replica_id == b.replica_id == "ra"
    sync_once(a, c, max_bytes=max_bytes)  # c and d hold the state from before the copy
    sync_once(b, d, max_bytes=max_bytes)
    acks = before + _write_on(a, "A", shared, lww) + _write_on(b, "B", shared, lww)
    # c hears copy A first, d hears copy B first
    for first, second, dst in ((a, b, c), (b, a, d)):
        sync_once(first, dst, max_bytes=max_bytes)
        sync_once(second, dst, max_bytes=max_bytes)
        _assert_holds(dst, acks)
    _sync_all([a, b, c, d], max_bytes=max_bytes)
    for r in (a, b, c, d):
        _assert_holds(r, acks)
        assert r.set_members("tags") == {"before", "A", "B"}
    assert len({r.state_digest() for r in (a, b, c, d)}) == 1
    # the concurrent updates of the memory from before the copy stand side by side
    record = c.get(shared)
    assert record is not None
    assert sorted(v.text for v in record.versions) == \
        ["A updates the shared memory", "B updates the shared memory"]
    assert {v.replica for v in record.versions} == {"ra"}


# -- restores --------------------------------------------------------------------------


@pytest.mark.parametrize("hot", [False, True], ids=["closed", "hot"])
@pytest.mark.parametrize("in_place", [False, True], ids=["elsewhere", "in-place"])
def test_a_backup_restored_after_the_original_wrote_more_loses_nothing(
        tmp_path: Path, opened: Callable[..., Replica], in_place: bool, hot: bool) -> None:
    clock = ticking()
    home = tmp_path / "a"
    original = Replica.open(home, replica_id="ra", clock=clock)
    first = original.add("before the backup", user_id="u")
    acks = [_wrote(original, first, "before the backup")]
    if hot:  # the same process goes on writing after the backup
        _hot_backup(original, tmp_path / "backup")
    else:  # the original restarts after the backup
        original.close()
        shutil.copytree(home, tmp_path / "backup")
        original = Replica.open(home, clock=clock)
    c = opened(tmp_path / "c", replica_id="rc", clock=clock)
    with original:  # the original goes on, and syncs
        later = original.add("after the backup", user_id="u")
        original.update(first, "updated after the backup")
        acks += [_wrote(original, later, "after the backup"),
                 _wrote(original, first, "updated after the backup")]
        sync_once(original, c)
    if in_place:  # the files are put back under the original path
        shutil.rmtree(home)
        shutil.copytree(tmp_path / "backup", home)
        restored = opened(home, clock=clock)
    else:  # the backup comes back on another machine
        restored = opened(tmp_path / "backup", clock=clock)
    assert restored.replica_id == "ra" and restored.get(later) is None
    fresh = restored.add("written by the restored copy", user_id="u")
    restored.update(first, "the restored copy updates the first memory")
    acks += [_wrote(restored, fresh, "written by the restored copy"),
             _wrote(restored, first, "the restored copy updates the first memory")]
    d = opened(tmp_path / "d", replica_id="rd", clock=clock)
    for order in ((restored, c), (c, restored), (restored, d), (c, d)):
        sync_once(*order, max_bytes=250)
    for r in (restored, c, d):
        _assert_holds(r, acks)
    assert len({r.state_digest() for r in (restored, c, d)}) == 1
    # the restored copy learnt its old origin's later events from the peers' claims:
    # nothing is shipped to it again
    assert unpackb(c.sync_changes(restored.sync_summary()))["states"] == ()  # type: ignore[index]


def test_a_restored_copy_takes_an_old_origins_watermark_from_claims_not_from_one_key(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    """Only the current origin's counter follows received dots: had the restored copy
    raised its pre-restore origin's counter to the ``ctx`` of the first key it received,
    its summary would claim that origin's events on keys it never got."""
    clock = ticking()
    relay = opened(tmp_path / "relay", replica_id="a0", clock=clock)  # sorts before "ra#"
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as original:
        old = original.add("before the backup", user_id="u")
        _hot_backup(original, tmp_path / "backup")
        keys = [original.add(f"after the backup {i}", user_id="u") for i in range(3)]
        original.update(old, "updated last")  # the newest event of the old origin
        sync_once(original, relay)
    relay.update(old, "the relay updates it")  # shipped first (origin "a0#..."), joined
    restored = opened(tmp_path / "backup", clock=clock)
    sync_once(relay, restored, max_bytes=1)  # one state per payload
    assert [restored.get(k) is not None for k in keys] == [True, True, True]
    assert restored.state_digest() == relay.state_digest()


# -- several objects and processes on one path ------------------------------------------


def test_each_replica_object_on_a_path_mints_under_its_own_origin(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    clock = ticking()
    acks: list[Ack] = []
    origins = []
    for lifetime in range(3):
        with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as r:
            assert r.origin is None
            key = r.add(f"lifetime {lifetime}", user_id="u")
            acks.append(_wrote(r, key, f"lifetime {lifetime}"))
            assert r.origin is not None
            origins.append(r.origin)
    assert len(set(origins)) == 3
    assert all(o.startswith("ra#") and len(o) == len("ra#") + 8 for o in origins)
    assert [ack.dot for ack in acks] == [Dot(o, 1) for o in origins]
    c = opened(tmp_path / "c", replica_id="rc", clock=clock)
    a = opened(tmp_path / "a", clock=clock)
    sync_once(a, c)
    _assert_holds(c, acks)
    # every origin minted here is in the summary at its counter while it may still be
    # writing; "me" only after a write
    summary = unpackb(a.sync_summary())
    assert summary["wm"] == {o: 1 for o in origins} and "me" not in summary  # type: ignore[index]
    # once quiet, every earlier origin is retired at its counter when c's summary shows
    # it holds it (docs/internals.md, "Retired origins"): it leaves the summaries, here
    # and at c once c has the entries
    clock.advance(EARLIER_QUIET_MS)
    a.sync_changes(c.sync_summary())
    summary = unpackb(a.sync_summary())
    assert summary["wm"] == {} and "rt" in summary and "me" not in summary  # type: ignore[index,operator]
    c.sync_apply(a.sync_changes(c.sync_summary()))
    assert unpackb(c.sync_summary())["wm"] == {}  # type: ignore[index]
    a.add("now a writes", user_id="u")
    summary = unpackb(a.sync_summary())
    assert summary["me"] == a.origin and summary["wm"][a.origin] == 1  # type: ignore[index]


_WRITER = """
import sys
from memmesh.storage import Replica
path, shared, who = sys.argv[1:4]
with Replica.open(path) as r:
    for i in range(25):
        key = r.add(f"{who} {i}", user_id="u")
        print("A", key, f"{who} {i}", flush=True)
        if i % 5 == 0:
            r.update(shared, f"{who} update {i}")
            print("U", shared, f"{who} update {i}", flush=True)
    print("O", r.origin, "-", flush=True)
"""


def test_two_processes_writing_on_one_path_lose_nothing(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    path = tmp_path / "a"
    with Replica.open(path, replica_id="ra") as r:
        shared = r.add("shared before", user_id="u")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), shared, who],
                              stdout=subprocess.PIPE, text=True) for who in ("p", "q")]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    a = opened(path)
    c = opened(tmp_path / "c", replica_id="rc")
    sync_once(a, c, max_bytes=500)
    origins = []
    texts: dict[str, set[str]] = {}
    for out in outputs:
        for line in out.splitlines():
            kind, key, text = line.split(" ", 2)
            if kind == "O":
                origins.append(key)
            else:
                texts.setdefault(key, set()).add(text)
    assert len(set(origins)) == 2 and all(o.startswith("ra#") for o in origins)
    # every update of the shared memory was recorded on the path, each with its own dot
    updates = [e for e in a.history(shared) if e.op == "UPDATE"]
    assert {e.text for e in updates} == texts.pop(shared)
    acks = [Ack(shared, e.dot, e.text) for e in updates if e.dot is not None and e.text]
    acks += [_wrote(a, key, text) for key, written in texts.items() for text in written]
    dots = [ack.dot for ack in acks]
    assert len(dots) == len(set(dots)) == 60 and {d.replica for d in dots} == set(origins)
    for r in (a, c):
        _assert_holds(r, acks)
    assert a.state_digest() == c.state_digest()


# -- what allocates an incarnation, and what is refused ----------------------------------


def test_reads_and_sync_draw_no_incarnation(tmp_path: Path, opened: Callable[..., Replica]) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as r:
        key = r.add("written once", user_id="u")
    peer = opened(tmp_path / "p", replica_id="rp", clock=clock)
    peer.add("from a peer", user_id="u")
    a = opened(tmp_path / "a", clock=clock)
    before = unpackb(a.sync_summary())
    a.get(key), a.list(user_id="u"), a.history(key), a.conflicts(), a.state_digest()
    a.as_of(clock.now_ms).list()
    a.sync_changes(peer.sync_summary())
    sync_once(peer, a)
    assert a.delete("no such memory") is False and a.set_remove("no such set", 1) is False
    assert a.origin is None
    after = unpackb(a.sync_summary())
    assert "me" not in after
    assert {o: n for o, n in after["wm"].items() if o.startswith("ra")} == \
        before["wm"]  # type: ignore[index]


@pytest.mark.parametrize("replica_id", ["a#b", "#", "ab#", "x" * 120])
def test_a_replica_id_that_cannot_name_origins_is_refused(tmp_path: Path, replica_id: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Replica.open(tmp_path / "r", replica_id=replica_id)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("bad", ["", "a#b", "nul\x00", "x" * 33, 12345, None, b"bytes"])
def test_a_bad_incarnation_from_the_factory_is_refused_and_writes_nothing(
        tmp_path: Path, opened: Callable[..., Replica], bad: object) -> None:
    r = opened(tmp_path / "r", replica_id="ra", incarnation_factory=lambda: bad)
    with pytest.raises(InvalidArgumentError):
        r.add("never written")
    with pytest.raises(InvalidArgumentError):
        r.set_add("tags", "x")
    assert r.origin is None and r.list() == [] and r.journal_seq() == 0
    assert unpackb(r.sync_summary())["wm"] == {}  # type: ignore[index]


def test_a_seeded_incarnation_factory_names_the_origin(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    draws = iter(["first", "second"])
    r = opened(tmp_path / "r", replica_id="ra", incarnation_factory=lambda: next(draws))
    key = r.add("hello")
    r.update(key, "hello again")
    record = r.get(key)
    assert record is not None and r.origin == "ra#first"
    assert [v.dot for v in record.versions] == [Dot("ra#first", 2)]
    assert record.versions[0].timestamp.replica == "ra#first"
    assert record.created_at.replica == "ra#first"


def test_a_summary_naming_an_origin_of_another_replica_as_me_is_refused(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    a = opened(tmp_path / "a", replica_id="ra")
    a.add("x")
    summary = unpackb(a.sync_summary())
    assert isinstance(summary, dict)
    for me in ("rb#abcdefgh", "ra", 7, "ra#x\x00"):
        with pytest.raises(DecodeError):
            a.sync_changes(packb({**summary, "me": me}))


# -- who wrote it: the member, not the incarnation -----------------------------------------


def test_versions_events_and_the_arbiter_election_name_the_member(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as first:
        key = first.add("base", user_id="u")
        first.update(key, "ra in its first lifetime")
    a = opened(tmp_path / "a", clock=clock)
    b = opened(tmp_path / "b", replica_id="rb", clock=clock)
    sync_once(a, b)
    b.update(key, "rb writes")
    sync_once(b, a)
    a.update(key, "ra in its second lifetime")  # supersedes both: one version
    c = opened(tmp_path / "c", replica_id="rc", clock=clock)
    b.update(key, "rb again, concurrently")
    sync_once(a, c)
    sync_once(b, c)
    record = c.get(key)
    assert record is not None and record.conflicted
    assert {v.replica for v in record.versions} == {"ra", "rb"}
    assert {v.dot.replica for v in record.versions} == {a.origin, b.origin}
    assert sorted(arbiter_rank(record)) == ["ra", "rb"]
    now = clock.now_ms
    assert Election("ra").may_resolve(record, now, deadline_ms=10_000) != \
        Election("rb").may_resolve(record, now, deadline_ms=10_000)
    assert {e.replica for e in c.history(key)} == {"ra", "rb"}
    assert {e.replica for e in a.history(key) if e.op != "NOOP"} == {"ra", "rb"}


def test_a_push_carries_the_writes_of_every_incarnation_of_the_pusher(
        tmp_path: Path, opened: Callable[..., Replica]) -> None:
    clock = ticking()
    with Replica.open(tmp_path / "a", replica_id="ra", clock=clock) as first:
        earlier = first.add("an earlier lifetime", user_id="u")
    a = opened(tmp_path / "a", clock=clock)
    b = opened(tmp_path / "b", replica_id="rb", clock=clock)
    relayed = b.add("third party")
    sync_once(b, a)
    now = a.add("this lifetime", user_id="u")
    peer = opened(tmp_path / "p", replica_id="rp", clock=clock)
    pushed = push_summary(peer.sync_summary(), a.sync_summary(), a.replica_id)
    assert pushed is not None
    peer.sync_apply(a.sync_changes(pushed))
    assert peer.get(earlier) is not None and peer.get(now) is not None
    assert peer.get(relayed) is None

"""The arbiter loop on member credentials: a member writes a resolution only under a
role it was granted, and one that may not write there at all says so once and goes on
(the node retries every interval; a traceback per pass was what the demo printed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from manual_clock import Clock

from memmesh.merge import Resolution, resolve_conflicts
from memmesh.semantic import RolePriority
from memmesh.storage import Replica
from memmesh.trust import Authority, Grant, MemberIdentity, PermissionDeniedError

NOW = 1_700_000_000_000
DAY = 86_400_000
AUTHORITY = Authority.create("merge-tests")


def _member(replica_id: str, roles: tuple[str, ...], write: str) -> MemberIdentity:
    return AUTHORITY.issue(replica_id, read=(Grant.parse("all"),),
                           write=(Grant.parse(write),), roles=roles,
                           expires_ms=NOW + DAY, now_ms=NOW)


def _sync(a: Replica, b: Replica) -> None:
    for src, dst in ((a, b), (b, a), (a, b)):
        dst.sync_apply(src.sync_changes(dst.sync_summary()))


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Replica, Replica, str]]:
    """A conflict on a user's memory between an engineer and a reviewer."""
    clock = Clock(NOW, tick_ms=1)
    with Replica.open(tmp_path / "a", identity=_member("a", ("engineer",), "users=alice"),
                      clock=clock) as a, \
            Replica.open(tmp_path / "b", identity=_member("b", ("reviewer",), "all"),
                         clock=clock) as b:
        mid = a.add("base", user_id="alice")
        _sync(a, b)
        a.update(mid, "from the engineer")
        b.update(mid, "from the reviewer")
        _sync(a, b)
        record = a.get(mid)
        assert record is not None and record.conflicted
        yield a, b, mid


def test_a_member_without_the_picked_versions_role_resolves_under_its_own(
        fleet: tuple[Replica, Replica, str]) -> None:
    a, b, mid = fleet
    out = resolve_conflicts(a, RolePriority(["reviewer", "engineer"]), deadline_ms=0)
    assert [o.error for o in out] == [None]
    version = out[0].version
    assert version is not None and version.text == "from the reviewer"
    assert version.role == "engineer"  # a's own: it holds no 'reviewer' grant
    _sync(a, b)
    resolved = b.get(mid)
    assert resolved is not None and not resolved.conflicted


def test_a_member_that_may_not_write_there_warns_once_and_raises_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(NOW, tick_ms=1)
    with Replica.open(tmp_path / "a", identity=_member("a", ("lead",), "users=bob"),
                      clock=clock) as a, \
            Replica.open(tmp_path / "b", identity=_member("b", ("lead",), "all"),
                         clock=clock) as b, \
            Replica.open(tmp_path / "c", identity=_member("c", ("lead",), "all"),
                         clock=clock) as c:
        mid = b.add("base", user_id="alice")
        _sync(b, c)
        b.update(mid, "from b")
        c.update(mid, "from c")
        _sync(b, c)
        _sync(b, a)
        record = a.get(mid)
        assert record is not None and record.conflicted
        with caplog.at_level(logging.DEBUG, logger="memmesh.merge"):
            for _ in range(3):
                out = resolve_conflicts(a, lambda _: Resolution.merged("settled"),
                                        deadline_ms=0)
                assert [type(o.error) for o in out] == [PermissionDeniedError]
                assert out[0].version is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and mid in warnings[0].getMessage()
        still = a.get(mid)
        assert still is not None and still.conflicted

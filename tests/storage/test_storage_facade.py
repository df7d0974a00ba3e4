"""``Replica`` is a facade over parts: it offers every call its consumers' Protocols
name (gossip's ``SyncReplica``/``NodeReplica``, merge's ``ConflictReplica``), with the
parameters they pass, and each delegated call keeps its part's documentation."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from memmesh.gossip.protocol import NodeReplica, SyncReplica
from memmesh.merge import ConflictReplica
from memmesh.storage import Replica


def _members(protocol: type[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                out[name] = value
    return out


@pytest.mark.parametrize("protocol", [SyncReplica, NodeReplica, ConflictReplica],
                         ids=lambda p: p.__name__)
def test_replica_offers_every_call_of_its_consumers_protocols(
        tmp_path: Path, protocol: type[Any]) -> None:
    with Replica.open(tmp_path / "r") as replica:
        for name, member in _members(protocol).items():
            assert hasattr(replica, name), f"Replica lacks {protocol.__name__}.{name}"
            if isinstance(member, property) or not callable(member):
                continue
            wanted = inspect.signature(member).parameters
            offered = inspect.signature(getattr(Replica, name)).parameters
            for param in wanted:
                assert param in offered or any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in offered.values()), \
                    f"Replica.{name} takes no {param!r} ({protocol.__name__})"


def test_delegated_calls_work_and_keep_their_part_s_documentation(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r") as replica:
        mid = replica.add("hello", user_id="u", actor="a")
        replica.update(mid, "hello again")
        assert replica.get(mid).text == "hello again"  # type: ignore[union-attr]
        assert [e.op for e in replica.history(mid)] == ["ADD", "UPDATE"]
        assert replica.journal_seq() == 2
        assert Replica.add.__doc__ and "Create a memory" in Replica.add.__doc__
        assert Replica.sync_apply.__doc__ and Replica.get.__doc__

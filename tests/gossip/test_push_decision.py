"""push_decision: the one reading of a journal page into a push, for node and simulator."""

from __future__ import annotations

import pytest
from gossip_fakes import FakeReplica
from hypothesis import given
from hypothesis import strategies as st

from memmesh.crdt import InvalidArgumentError
from memmesh.gossip import Node
from memmesh.gossip.protocol import (
    LocalProtocolError,
    PolicyConfig,
    PushDecision,
    push_decision,
)
from memmesh.storage import Change


def change(local: bool = True, priority: bool = False, sync: str | None = None) -> Change:
    return Change(1, "k", local, priority, None, sync)


def test_pull_mode_writes_never_ask_for_a_push() -> None:
    assert push_decision([change(sync="pull"), change(priority=True, sync="pull")]) == \
        PushDecision(push=False, priority=False, pushed=0, pulled=2)


def test_a_push_mode_or_unnamed_write_asks_for_a_push_priority_only_for_priority() -> None:
    assert push_decision([change(sync="pull"), change()]) == PushDecision(True, False, 1, 1)
    assert push_decision([change(priority=True)]) == PushDecision(True, True, 1, 0)


def test_the_default_applies_to_writes_without_a_mode_but_priority_still_pushes() -> None:
    assert push_decision([change()], default="pull") == PushDecision(False, False, 0, 1)
    assert push_decision([change(priority=True)], default="pull").push
    assert push_decision([change(sync="push")], default="pull").push


def test_changes_from_peers_ask_nothing_and_a_reset_page_pushes() -> None:
    assert push_decision([change(local=False, priority=True)]) == PushDecision()
    assert push_decision([], reset=True) == PushDecision(True, False, 0, 0)
    # the tuple form of test fakes: (seq, key, local, priority)
    assert push_decision([(1, "k", True, True)]) == PushDecision(True, True, 1, 0)


def test_a_bad_default_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        push_decision([], default="later")
    with pytest.raises(LocalProtocolError):
        PolicyConfig(sync_default="never")
    with pytest.raises(InvalidArgumentError):
        Node(FakeReplica("A"), mdns=False, insecure=True, sync_default="sometimes")


entries = st.lists(st.builds(change, st.booleans(), st.booleans(),
                             st.sampled_from([None, "push", "pull"])), max_size=12)


@given(entries, entries, st.sampled_from(["push", "pull"]))
def test_deciding_two_pages_apart_equals_deciding_them_together(
        first: list[Change], second: list[Change], default: str) -> None:
    together = push_decision(first + second, default=default)
    assert push_decision(first, default=default) | push_decision(second, default=default) \
        == together
    local = [c for c in first + second if c.local]
    assert together.pushed + together.pulled == len(local)
    assert together.push == any(
        c.sync == "push" or (c.sync is None and (c.priority or default == "push"))
        for c in local)

"""Memory ids are uuid4 hex strings (docs/internals.md section 2)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import Replica
from memmesh.storage._memory import new_memory_id


def test_memory_ids_are_uuid4_hex_and_distinct() -> None:
    ids = [new_memory_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for memory_id in ids:
        parsed = uuid.UUID(hex=memory_id)
        assert parsed.hex == memory_id and len(memory_id) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122



def test_an_id_factory_repeating_an_id_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "r", id_factory=lambda: "same-id") as replica:
        replica.add("first", user_id="u")
        digest, seq = replica.state_digest(), replica.journal_seq()
        with pytest.raises(InvalidArgumentError):
            replica.add("second", user_id="u")
        record = replica.get("same-id")
        assert record is not None and record.text == "first"
        assert replica.state_digest() == digest and replica.journal_seq() == seq
        assert [r.text for r in replica.list(user_id="u")] == ["first"]

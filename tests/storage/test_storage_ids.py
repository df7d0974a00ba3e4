"""Memory ids are uuid4 hex strings (docs/internals.md section 2)."""

from __future__ import annotations

import uuid

from memmesh.storage.memory import new_memory_id


def test_memory_ids_are_uuid4_hex_and_distinct() -> None:
    ids = [new_memory_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for memory_id in ids:
        parsed = uuid.UUID(hex=memory_id)
        assert parsed.hex == memory_id and len(memory_id) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122

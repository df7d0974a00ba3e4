"""A member catching up serves reads between the chunks of a bulk transfer: each
applied chunk is its own transaction, and what a read sees then is a consistent part
of the source's state (whole keys, never half of one), growing chunk by chunk until the
replicas are equal (issue 17, deliverable 2)."""

from __future__ import annotations

from pathlib import Path

from memmesh.storage import Replica


def _view(replica: Replica) -> dict[str, tuple[tuple[str, ...], bool]]:
    """memory id -> (its versions' texts, conflicted)."""
    return {r.id: (tuple(sorted(v.text for v in r.versions)), r.conflicted)
            for r in replica.list(limit=None)}


def test_reads_between_chunks_of_a_bulk_transfer_see_whole_keys(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a", durable=False) as a, \
            Replica.open(tmp_path / "b", durable=False) as b:
        ids = [a.add(f"note {i} " + "y" * 120, app_id="app", user_id="u") for i in range(300)]
        for i in range(0, 300, 3):  # later versions: states with history
            a.update(ids[i], f"note {i}, revised")
        source = _view(a)
        sizes = []
        while True:
            changes = a.sync_changes(b.sync_summary(), max_bytes=4096)
            if not b.sync_apply(changes).applied:
                break
            seen = _view(b)
            # every key visible between chunks is the source's key, whole
            assert all(source[k] == v for k, v in seen.items())
            assert all(b.get(k) is not None for k in seen)
            sizes.append(len(seen))
        assert len(sizes) > 5  # it took many chunks
        assert sizes == sorted(sizes) and sizes[-1] == len(source)
        assert b.state_digest() == a.state_digest()
